"""Radiology-grade pixels: 16-bit PNG/TIFF and DICOM read as a radiologist would, EXIF and giant images handled — the same
in the reader, prepare-csv, a training rank's CSV and webdataset pipelines, preflight and eval.

Phantoms (tests/medical_images.py) are four bands: air, soft tissue, a lesion, bone. Plain Pillow sees 0, 255, 255, 255.
"""

from __future__ import annotations

import csv
import io
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import REPO
from medical_images import (
    HOUNSFIELD,
    band_values,
    bands,
    compressed_ct,
    ct,
    eight_bit_dicom,
    enhanced_ct,
    high_throughput_jpeg2000_ct,
    marked_photo,
    multi_frame_ct,
    png16,
    radiograph_monochrome1,
    tiff16,
    video_dicom,
    write,
)
from PIL import Image
from pydicom.uid import JPEG2000Lossless, RLELossless
from rank_inputs import rank_inputs
from run_folders import assert_refused
from typer.testing import CliRunner

from biomedclip_cli.cli import app
from biomedclip_cli.data.pixels.bounds import ImageTooLarge
from biomedclip_cli.data.pixels.dicom import MissingDicomDecoder
from biomedclip_cli.data.pixels.reader import ImageKind, read_image
from biomedclip_cli.data.shard_writer import ShardWriter
from biomedclip_cli.pixel_policy import PixelSettings

AUTO = PixelSettings()
SOFT_TISSUE_WINDOW = [0, 128, 160, 255]  # HU -1000, 40, 90, 1000 through the file's own window 40/400


def read(data: bytes, intensity: str = "auto", name: str = "", max_pixels: int | None = None):
    settings = PixelSettings.of(intensity, max_pixels) if max_pixels else PixelSettings.of(intensity)
    return read_image(data, settings, name)


def strictly_increasing(values: list[int]) -> bool:
    return all(low < high for low, high in zip(values, values[1:], strict=False))


# The reader

@pytest.mark.parametrize("maker", [png16, tiff16], ids=["16-bit PNG", "16-bit TIFF"])
def test_sixteen_bit_tissues_stay_apart_where_pillow_saturates_them(maker):
    with Image.open(io.BytesIO(maker())) as image:
        assert band_values(image.convert("RGB")) == [0, 255, 255, 255]  # the defect: lesion and bone gone
    decoded = read(maker())
    assert decoded.facts.kind is ImageKind.HIGH_BIT_DEPTH and decoded.image.mode == "RGB" and decoded.image.size == (64, 64)
    assert band_values(decoded.image) == [0, 89, 153, 255]  # the 0.5-99.5 percentile window: every tissue its own grey
    assert band_values(read(maker(), "clip").image) == [0, 255, 255, 255]  # today's behaviour, on request


def test_every_intensity_policy_maps_sixteen_bits_as_it_says():
    assert band_values(read(png16(), "minmax").image) == [0, 89, 153, 255]
    assert band_values(read(png16(), "window:1500,1000").image) == [0, 35, 246, 255]
    assert band_values(read(png16(bands((100, 1000, 2000, 3000))), "percentile:0,100").image) == [0, 79, 167, 255]
    sixteen_bit_rgb = np.stack([bands()] * 3, axis=-1)
    assert band_values(read(tiff16(sixteen_bit_rgb, photometric="rgb")).image) == [0, 89, 153, 255]  # Pillow: its high bytes, near black


def test_dicom_rescale_then_its_own_window_and_a_window_in_hounsfield_units_on_request():
    decoded = read(ct())
    assert decoded.facts.kind is ImageKind.DICOM and band_values(decoded.image) == SOFT_TISSUE_WINDOW
    assert band_values(read(ct(), "window:-600,1600").image) == [64, 230, 238, 255]  # a lung window, in HU after the rescale
    without_window = read(ct(window=None)).image  # no window in the file: the percentile window of the rescaled values
    assert strictly_increasing(band_values(without_window))


def test_monochrome1_is_inverted_multi_frame_shows_the_middle_frame_compressed_files_decode():
    assert band_values(read(radiograph_monochrome1()).image) == [0, 71, 122, 204]  # stored inverted; low values are white
    assert band_values(read(multi_frame_ct()).image) == SOFT_TISSUE_WINDOW
    for compressed in (compressed_ct(JPEG2000Lossless), compressed_ct(RLELossless), high_throughput_jpeg2000_ct()):
        assert band_values(read(compressed).image) == SOFT_TISSUE_WINDOW


def test_enhanced_multi_frame_dicom_uses_the_rescale_and_window_of_its_functional_groups():
    assert band_values(read(enhanced_ct()).image) == SOFT_TISSUE_WINDOW
    assert band_values(read(enhanced_ct(), "window:-600,1600").image) == [64, 230, 238, 255]


def test_an_8_bit_dicom_without_a_window_passes_through_as_an_8_bit_png_would():
    assert band_values(read(eight_bit_dicom()).image) == [20, 60, 100, 140]
    assert band_values(read(eight_bit_dicom("MONOCHROME1")).image) == [235, 195, 155, 115]


def test_a_few_bright_spots_on_black_are_not_windowed_away():
    spots = np.zeros((200, 200), np.uint16)
    spots[:4, :10] = 4000  # 40 pixels in 40,000: the 99.5th percentile is still black
    assert np.asarray(read(png16(spots)).image).max() == 255


@pytest.mark.parametrize("layout", ["lzw-rgb", "palette", "miniswhite", "cmyk", "lzw-16-bit", "lzw-16-bit-rgb"])
def test_tiffs_of_every_layout_read_as_pillow_reads_8_bits_and_as_values_above(layout: str):
    buffer = io.BytesIO()
    if layout == "lzw-rgb":
        Image.new("RGB", (8, 8), (200, 30, 90)).save(buffer, "TIFF", compression="tiff_lzw")
        expected = (200, 30, 90)
    elif layout == "palette":
        palette = Image.new("P", (8, 8), 1)
        palette.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
        palette.save(buffer, "TIFF")
        expected = (200, 0, 0)
    elif layout == "miniswhite":
        tifffile.imwrite(buffer, np.full((8, 8), 0, np.uint8), photometric="miniswhite")
        expected = (255, 255, 255)
    elif layout == "cmyk":
        Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(buffer, "TIFF")
        expected = (0, 255, 255)  # cyan
    else:
        values = bands() if layout == "lzw-16-bit" else np.stack([bands()] * 3, axis=-1)
        tifffile.imwrite(buffer, values, compression="lzw", photometric="minisblack" if values.ndim == 2 else "rgb")
        assert band_values(read(buffer.getvalue()).image) == [0, 89, 153, 255]
        return
    assert read(buffer.getvalue()).image.getpixel((4, 4)) == expected


def test_a_16_bit_colour_png_keeps_its_values():
    import imagecodecs

    colour = imagecodecs.png_encode(np.stack([bands()] * 3, axis=-1))
    with Image.open(io.BytesIO(colour)) as image:
        assert band_values(image.convert("RGB")) == [0, 4, 7, 12]  # Pillow: the high bytes of 12-bit data, near black
    decoded = read(colour)
    assert decoded.facts.kind is ImageKind.HIGH_BIT_DEPTH and band_values(decoded.image) == [0, 89, 153, 255]


def test_a_dicom_no_decoder_reads_and_a_corrupt_one_raise_what_the_ranks_list():
    with pytest.raises(MissingDicomDecoder, match="no DICOM decoder reads 'MPEG2"):
        read(video_dicom())
    with pytest.raises(ValueError, match="has no pixel data: cut short before it"):
        read(ct()[:400])
    with pytest.raises(ValueError, match="less than expected"):  # pydicom's words for pixel data cut short
        read(ct()[:-100])


def test_a_compressed_dicom_without_the_decoder_extra_names_the_extra(tmp_path: Path):
    """An install without pylibjpeg's plugins, made by hiding them from the import system of a fresh process."""
    (tmp_path / "ct.dcm").write_bytes(high_throughput_jpeg2000_ct())
    script = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pylibjpeg', 'openjpeg', 'libjpeg', 'gdcm', 'rle'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from biomedclip_cli.data.pixels.reader import read_image\n"
        "from biomedclip_cli.pixel_policy import PixelSettings\n"
        f"read_image({str(tmp_path / 'ct.dcm')!r}, PixelSettings())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "MissingDicomDecoder" in result.stderr and "pip install 'bmclip[dicom-compressed]'" in result.stderr


def test_exif_orientation_is_applied():
    stored, upright = marked_photo(orientation=6)
    with Image.open(io.BytesIO(stored)) as raw:
        assert raw.size == (48, 96)  # what plain Pillow and open_clip would train on: sideways
    decoded = read(stored)
    assert decoded.facts.rotated and decoded.image.size == upright.size == (96, 48)
    assert decoded.image.getpixel((4, 4))[0] > 200 and decoded.image.getpixel((90, 44))[0] < 80


def test_images_over_the_pixel_bound_are_read_reduced_or_refused_with_the_reason():
    big = Image.new("RGB", (400, 300), (30, 160, 90))
    for image_format in ("JPEG", "PNG"):  # 120,000 pixels: JPEG reduced while decoding, PNG after (under twice the bound)
        buffer = io.BytesIO()
        big.save(buffer, format=image_format)
        decoded = read(buffer.getvalue(), max_pixels=70_000)
        assert decoded.facts.over_bound and decoded.image.size == (200, 150) and abs(decoded.image.getpixel((10, 10))[1] - 160) < 6
    with pytest.raises(ImageTooLarge, match="400x300 = 120,000 pixels, over twice --max-pixels 40,000"):
        read(buffer.getvalue(), max_pixels=40_000)


def test_transparent_figures_lie_on_white():
    figure = Image.new("RGBA", (8, 8), (200, 0, 0, 0))
    buffer = io.BytesIO()
    figure.save(buffer, format="PNG")
    assert read(buffer.getvalue()).image.getpixel((0, 0)) == (255, 255, 255)


# prepare-csv

def prepare_csv(*args: str | Path):
    return CliRunner().invoke(app, ["prepare-csv", *map(str, args)], catch_exceptions=False)


def radiology_folder(root: Path) -> dict[str, Path]:
    files = {"mri.png": png16(), "abdomen.tif": tiff16(), "head.dcm": ct(), "chest.dcm": radiograph_monochrome1(),
             "slide.jpg": marked_photo(6)[0], "plain.jpg": marked_photo(1)[0]}
    return write(root, files, {name: f"figure {name}" for name in files})


def test_prepare_csv_counts_kinds_names_the_policy_and_writes_shards_of_what_the_model_sees(tmp_path: Path):
    paths = radiology_folder(tmp_path / "scans")
    result = prepare_csv(tmp_path / "scans", "--check-images", "--out", tmp_path / "train.csv", "--shards", tmp_path / "shards")

    assert result.exit_code == 0, result.stderr
    assert "images    2 8-bit, 2 high bit depth, 2 DICOM; 1 stored rotated (EXIF), read upright" in result.stdout
    assert "4 high-bit-depth/DICOM images mapped to 8 bits by --intensity auto" in result.stdout
    assert "converted 5 images written to the shards as the 8-bit PNG the model sees" in result.stdout
    with (tmp_path / "train.csv").open(newline="") as stream:
        assert {Path(row["filepath"]) for row in csv.DictReader(stream)} == set(paths.values())  # the CSV names the originals
    members = read_shard_members(tmp_path / "shards" / "000000.tar")
    with Image.open(io.BytesIO(members["mri"]["png"])) as image:  # plain Pillow, as plain open_clip reads the shards
        assert image.mode == "RGB" and band_values(image) == [0, 89, 153, 255]
    with Image.open(io.BytesIO(members["head"]["png"])) as image:
        assert band_values(image) == SOFT_TISSUE_WINDOW
    with Image.open(io.BytesIO(members["slide"]["png"])) as image:
        assert image.size == (96, 48)
    assert "jpg" in members["plain"]  # an upright 8-bit JPEG keeps its own bytes


def read_shard_members(shard: Path) -> dict[str, dict[str, bytes]]:
    """Each sample's members by suffix, keyed by the stem of its source file (prepare-csv's keys are NNNNNNNNN-<stem>)."""
    import tarfile

    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(shard) as tar:
        for member in tar.getmembers():
            key, suffix = member.name.split(".", 1)
            extracted = tar.extractfile(member)
            samples.setdefault(key.split("-", 1)[1], {})[suffix] = extracted.read() if extracted else b""
    return samples


def test_prepare_csv_with_clip_says_so_in_the_next_command(tmp_path: Path):
    write(tmp_path / "scans", {"ct.png": png16()}, {"ct.png": "a CT"})
    result = prepare_csv(tmp_path / "scans", "--out", tmp_path / "train.csv", "--shards", tmp_path / "shards", "--intensity", "clip")

    assert result.exit_code == 0, result.stderr
    csv_line = next(line for line in result.stdout.splitlines() if "bmclip train" in line and ".csv" in line)
    assert shlex.split(csv_line)[-2:] == ["--intensity", "clip"]
    with Image.open(io.BytesIO(read_shard_members(tmp_path / "shards" / "000000.tar")["ct"]["png"])) as image:
        assert band_values(image) == [0, 255, 255, 255]


def test_prepare_csv_rejects_a_corrupt_dicom_a_video_dicom_and_an_image_too_large_with_their_reasons(tmp_path: Path):
    big = io.BytesIO()
    Image.new("L", (300, 300), 128).save(big, format="PNG")
    files = {"good.dcm": ct(), "corrupt.dcm": ct()[:400], "video.dcm": video_dicom(), "huge.png": big.getvalue()}
    write(tmp_path / "scans", files, {name: "a scan" for name in files})
    result = prepare_csv(tmp_path / "scans", "--check-images", "--out", tmp_path / "train.csv", "--max-pixels", "20000")

    assert result.exit_code == 0, result.stderr
    with (tmp_path / "train.rejects.csv").open(newline="") as stream:
        reasons = {Path(row["source"]).name: row["reason"] for row in csv.DictReader(stream)}
    assert set(reasons) == {"corrupt.dcm", "video.dcm", "huge.png"}
    assert reasons["corrupt.dcm"].startswith("unreadable image") and reasons["video.dcm"].startswith("DICOM decoder missing")
    assert reasons["huge.png"].startswith("image too large: 300x300 = 90,000 pixels, over twice --max-pixels 20,000")
    assert "1 written + 3 rejected = 4 read" in result.stdout


def test_captions_from_dicom_tags_and_rows_the_template_leaves_empty(tmp_path: Path):
    write(tmp_path / "scans", {"head.dcm": ct(), "bare.dcm": ct(Modality="", BodyPartExamined="", StudyDescription=""),
                               "photo.jpg": marked_photo(1)[0]})
    template = "{Modality} {BodyPartExamined}: {StudyDescription}"
    result = prepare_csv(tmp_path / "scans", "--caption-template", template, "--out", tmp_path / "train.csv")

    assert result.exit_code == 0, result.stderr
    with (tmp_path / "train.csv").open(newline="") as stream:
        written = [(Path(row["filepath"]).name, row["caption"]) for row in csv.DictReader(stream)]
    assert written == [("head.dcm", "CT HEAD: CT HEAD WO CONTRAST")]
    with (tmp_path / "train.rejects.csv").open(newline="") as stream:
        reasons = {Path(row["source"]).name: row["reason"] for row in csv.DictReader(stream)}
    assert reasons == {"bare.dcm": "empty caption: --caption-template left nothing: the file has none of Modality, BodyPartExamined, "
                                   "StudyDescription", "photo.jpg": "no caption: no photo.txt beside it"}


@pytest.mark.parametrize(("template", "expected"), [
    ("{Modality} {BodyPartExamind}", "'BodyPartExamind' at character 12 is not a DICOM keyword; did you mean {BodyPartExamined}?"),
    ("{Modality.__class__}", "field '{Modality.__class__}' at character 1 is not a plain DICOM keyword"),
    ("{{literal}} {Modalty}", "'Modalty' at character 13 is not a DICOM keyword; did you mean {Modality}?"),
    ("{__import__('os').system('touch pwned')}", "is not a plain DICOM keyword"),
    ("just text", "names no DICOM tag"),
], ids=["typo", "attribute", "after escaped braces", "code", "no field"])
def test_a_caption_template_is_parsed_never_run(tmp_path: Path, template: str, expected: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "scans", {"head.dcm": ct()})
    assert_refused(prepare_csv(tmp_path / "scans", "--caption-template", template, "--out", tmp_path / "train.csv"), expected)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "train.csv").exists()


def test_a_bad_intensity_is_one_line(tmp_path: Path):
    assert_refused(prepare_csv(tmp_path, "--out", tmp_path / "t.csv", "--intensity", "window:40"),
                   "--intensity: window needs two numbers, CENTER,WIDTH such as window:40,400 (got 'window:40')")


# Inside a training rank

def phantom_row_values(image: dict) -> list[int]:
    return [image["middle_row"][x] for x in (8, 24, 40, 56)]


@pytest.mark.parametrize("layout", ["csv", "shards"])
def test_a_rank_reads_sixteen_bit_and_dicom_images_through_the_reader_in_csv_and_shards(tmp_path: Path, monkeypatch, layout: str):
    monkeypatch.chdir(tmp_path)
    files = {"ct.png": png16(), "ct.tif": tiff16(), "head.dcm": ct(), "chest.dcm": radiograph_monochrome1()}
    if layout == "csv":
        paths = write(tmp_path / "scans", files)
        with (tmp_path / "train.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["filepath", "caption"])
            writer.writerows([str(path), f"scan {name}"] for name, path in paths.items())
        data = ["--train-data", str(tmp_path / "train.csv")]
    else:
        with ShardWriter(tmp_path / "shards", shard_size=10) as shards:
            for index, (name, payload) in enumerate(files.items()):
                shards.write(f"sample{index}", payload, f"scan {name}", {}, name.rsplit(".", 1)[1])
        data = ["--train-data", str(tmp_path / "shards" / "000000.tar"), "--train-num-samples", "4", "--no-dataset-resampled"]

    seen = rank_inputs(tmp_path, *data)
    assert len(seen) == 4 and all(image["size"] == [64, 64] for image in seen)
    assert sorted(phantom_row_values(image) for image in seen) == sorted(
        [[0, 89, 153, 255], [0, 89, 153, 255], SOFT_TISSUE_WINDOW, [0, 71, 122, 204]])
    clipped = rank_inputs(tmp_path, *data, "--intensity", "clip")
    assert [0, 255, 255, 255] in [phantom_row_values(image) for image in clipped]
    if layout == "shards":  # bench-data reads shards with the reader alone: every member kind still counts
        assert sorted(map(phantom_row_values, rank_inputs(tmp_path, *data, reader_only=True))) == sorted(map(phantom_row_values, seen))


def test_a_rank_shows_an_exif_rotated_photo_upright(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "photos", {"slide.jpg": marked_photo(6)[0]})["slide.jpg"]
    (tmp_path / "train.csv").write_text(f"filepath,caption\n{path},a slide\n")
    seen = rank_inputs(tmp_path, "--train-data", str(tmp_path / "train.csv"))
    assert seen[0]["size"] == [96, 48] and seen[0]["top_left"] > 200


# Preflight

def test_preflight_says_which_policy_applies_to_high_bit_depth_data(invoke, tmp_path: Path):
    paths = write(tmp_path / "scans", {"a.png": png16(), "b.dcm": ct(), "c.jpg": marked_photo(1)[0]})
    Path("train.csv").write_text("filepath,caption\n" + "".join(f"{path},scan\n" for path in paths.values()))
    result = invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert ("bmclip: --train-data: of the first 3 images, 1 high bit depth and 1 DICOM: mapped to 8 bits by --intensity auto "
            "(a DICOM file's own window, else each image's 0.5-99.5 percentile window)") in result.stderr
    clipped = invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--dry-run", "--intensity", "clip")
    assert "bmclip: warning: --intensity: clip saturates every value above 255" in clipped.stderr
    assert '"intensity":"clip"' in clipped.stdout


def test_preflight_says_nothing_about_pixels_of_8_bit_data(invoke, tmp_path: Path):
    path = write(tmp_path / "photos", {"c.jpg": marked_photo(1)[0]})["c.jpg"]
    Path("train.csv").write_text(f"filepath,caption\n{path},a photo\n")
    result = invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--dry-run")
    assert result.exit_code == 0 and "--intensity" not in result.stderr + result.stdout


def test_preflight_refuses_dicom_this_install_cannot_decode(invoke, tmp_path: Path):
    path = write(tmp_path / "scans", {"video.dcm": video_dicom()})["video.dcm"]
    Path("train.csv").write_text(f"filepath,caption\n{path},a clip\n")
    assert_refused(invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny"),
                   f"--train-data: cannot read {path}: no DICOM decoder reads 'MPEG2 Main Profile / Main Level' pixel data")


def test_intensity_in_yaml_is_checked_and_recorded_as_given(invoke, tmp_path: Path):
    Path("run.yaml").write_text("intensity: 'percentile: 1, 99'\n")
    path = write(tmp_path / "scans", {"a.png": png16()})["a.png"]
    Path("train.csv").write_text(f"filepath,caption\n{path},scan\n")
    result = invoke("train", "--config", "run.yaml", "--train-data", "train.csv", "--model", "bmclip-tiny", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert """--settings '{"intensity":"percentile:1,99"}' --""" in result.stdout
    Path("bad.yaml").write_text("intensity: sharpen\n")
    assert_refused(invoke("train", "--config", "bad.yaml", "--train-data", "train.csv", "--dry-run"),
                   "bad.yaml: intensity: 'sharpen' is not an intensity policy")
    refused = invoke("train", "--intensity", "percentile:5,1", "--train-data", "train.csv", "--dry-run")
    assert_refused(refused, "--intensity: percentile needs 0 <= LOW < HIGH <= 100 (got 'percentile:5,1'); for example")
    assert refused.stderr.count("(got") == 1


def test_hounsfield_phantom_matches_the_documented_window():
    """The phantom's numbers, so that a change to the window formula shows here first."""
    centre, width = 40, 400
    expected = [round(min(max((hu - (centre - 0.5)) / (width - 1) + 0.5, 0), 1) * 255) for hu in HOUNSFIELD]
    assert expected == SOFT_TISSUE_WINDOW
