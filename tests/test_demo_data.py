"""The synthetic demo dataset: eight classes, as a CSV and as BIOMEDICA-layout shards, held-out kept apart, scans stored
as radiology stores them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest
import webdataset as wds
from PIL import Image

from biomedclip_cli.data.demo import write_demo_dataset
from biomedclip_cli.data.pixels.reader import read_image
from biomedclip_cli.data.synthetic import MODALITIES, generate
from biomedclip_cli.pixel_policy import PixelSettings


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_csv_lists_every_figure_with_caption_and_label(demo_data):
    rows = read_rows(demo_data.train_csv)
    assert len(rows) == demo_data.train_samples == 25 * len(MODALITIES)
    assert {row["label"] for row in rows} == {m.label for m in MODALITIES}
    assert all(Path(row["filepath"]).is_file() and row["caption"] for row in rows)


def test_held_out_figures_are_never_in_the_training_data(demo_data):
    train = {row["filepath"] for row in read_rows(demo_data.train_csv)}
    heldout = read_rows(demo_data.heldout_csv)
    assert len(heldout) == 10 * len(MODALITIES)
    assert not train & {row["filepath"] for row in heldout}
    train_bytes = {Path(p).read_bytes() for p in train}
    assert not train_bytes & {Path(row["filepath"]).read_bytes() for row in heldout}


def test_shards_hold_each_class_in_its_radiology_format_with_txt_and_json(demo_data):
    folder = Path(demo_data.shards).parent
    sizes = json.loads((folder / "sizes.json").read_text())
    assert sizes == {"000000.tar": 100, "000001.tar": 100}
    samples = list(wds.WebDataset(demo_data.shards, shardshuffle=False))
    assert len(samples) == 200 == 25 * len(MODALITIES)
    image_member = {m.label: {"DICOM CT": "dcm", "DICOM radiograph": "dcm", "16-bit TIFF": "tif",
                              "16-bit PNG": "png"}.get(m.storage.value, "jpg")
                    for m in MODALITIES}
    for sample in samples:
        label = json.loads(sample["json"])["image_primary_label"][0]
        assert image_member[label] in sample and sample["txt"]
        assert read_image(sample[image_member[label]], PixelSettings(), f"x.{image_member[label]}").image.size == (64, 64)
    first = samples[0]
    assert first["__key__"].count("-") == 3 and "-PMC" in first["__key__"]


def test_scans_are_stored_as_radiology_exports_them(demo_data):
    rows = read_rows(demo_data.train_csv)
    formats = {row["label"]: Path(row["filepath"]).suffix for row in rows}
    assert formats["chest x-ray"] == formats["head ct"] == ".dcm"
    assert formats["abdominal ct"] == ".tif" and formats["t1 brain mri"] == formats["t2 brain mri"] == ".png"
    radiograph = pydicom.dcmread(next(row["filepath"] for row in rows if row["label"] == "chest x-ray"))
    head_ct = pydicom.dcmread(next(row["filepath"] for row in rows if row["label"] == "head ct"))
    assert radiograph.PhotometricInterpretation == "MONOCHROME1" and radiograph.Modality == "DX"
    assert head_ct.RescaleIntercept == -1024 and head_ct.pixel_array.max() > 255
    with Image.open(next(row["filepath"] for row in rows if row["label"] == "t2 brain mri")) as mri:
        assert mri.mode == "I;16" and mri.getextrema()[1] > 255


def test_without_radiology_formats_every_figure_is_an_8_bit_jpeg(tmp_path: Path):
    dataset = write_demo_dataset(tmp_path / "data", per_class=1, heldout_per_class=1, seed=0, shard_size=10, radiology_formats=False)
    assert {Path(row["filepath"]).suffix for row in read_rows(dataset.train_csv)} == {".jpg"}


def test_same_seed_same_figures_and_captions_vary():
    first = [(s.caption, s.image.tobytes()) for s in generate(3, seed=7)]
    again = [(s.caption, s.image.tobytes()) for s in generate(3, seed=7)]
    other = [(s.caption, s.image.tobytes()) for s in generate(3, seed=8)]
    assert first == again and first != other
    captions = {s.caption for s in generate(30, seed=1) if s.label == "t2 brain mri"}
    assert len(captions) > 5


def test_at_least_eight_classes_and_the_mri_sequences_are_named_in_their_captions():
    assert len(MODALITIES) >= 8 and len({m.label for m in MODALITIES}) == len(MODALITIES)
    captions = [(s.label, s.caption) for s in generate(20, seed=2)]
    assert all("T1" in caption and "T2" not in caption for label, caption in captions if label == "t1 brain mri")
    assert all("T2" in caption and "T1" not in caption for label, caption in captions if label == "t2 brain mri")


@pytest.mark.parametrize("interrupted_at", [3, 12], ids=["training split", "held-out split"])
def test_an_interruption_leaves_no_partial_file(tmp_path: Path, interrupted_at: int):
    written = 0

    def ctrl_c_at_sample(count: int) -> None:
        nonlocal written
        written += count
        if written == interrupted_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_demo_dataset(tmp_path / "data", per_class=2, heldout_per_class=1, seed=0, shard_size=4, progress=ctrl_c_at_sample)
    assert not [path.name for path in (tmp_path / "data").rglob("*") if path.name.endswith(".partial")]
    assert not (tmp_path / "data" / "heldout.csv").exists()


def test_refuses_to_overwrite_a_dataset(invoke, tmp_path):
    write_demo_dataset(tmp_path / "data", per_class=1, heldout_per_class=1, seed=0, shard_size=10)
    result = invoke("demo-data", str(tmp_path / "data"))
    assert result.exit_code == 2 and "already holds a dataset" in result.stderr
