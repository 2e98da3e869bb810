"""`bmclip prepare-csv --where/--classes` (keep only the samples whose metadata matches) and `--resize SHORT_SIDE`, on real shards.

The shards are written with bmclip's own ShardWriter and carry BIOMEDICA-shaped json (image_primary_label as a list,
article_license, image_panel_type, article_mesh_terms); what prepare-csv writes is read back with webdataset and Pillow.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest
from prepare_inputs import GOOD_FIGURES, Figures, encoded, metadata_records, write_figures, write_metadata
from typer.testing import CliRunner

from biomedclip_cli.cli import app
from biomedclip_cli.data.shard_writer import ShardWriter

# (labels, licence, panel type, MeSH terms) of the good samples, cycled.
KINDS = (
    (["Clinical Imaging"], "CC BY 4.0", "single", ["Humans", "Lung Neoplasms"]),
    (["Microscopy", "Immuno Assays"], "CC BY-NC 4.0", "multiple", ["Animals", "Mice"]),
    (["Plots and Charts"], "CC0", "single", ["Humans"]),
    (["Microscopy"], "CC BY-SA", "single", ["Animals", "Rats"]),
)
GOOD = 12


def metadata(index: int) -> dict:
    labels, licence, panel, mesh = KINDS[index % len(KINDS)]
    return {"image_primary_label": labels, "image_secondary_label": [], "article_license": licence, "image_panel_type": panel,
            "article_mesh_terms": mesh, "article_title": f"Case report {index // 2}"}


def picture(size: tuple[int, int], index: int = 0) -> bytes:
    """A JPEG whose red rises left to right and green top to bottom (so a turn or a flip shows), tinted by `index`."""
    from PIL import Image

    red = Image.linear_gradient("L").rotate(90).resize(size)
    green = Image.linear_gradient("L").resize(size)
    blue = Image.new("L", size, (index * 41) % 256)
    return encoded(Image.merge("RGB", (red, green, blue)), "JPEG")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two shards: GOOD good samples (KINDS cycled), a clinical one whose jpg is corrupt, and a plot without txt.

    Returns {"pattern", "good": {key: metadata}, "corrupt", "uncaptioned"}.
    """
    folder = tmp_path_factory.mktemp("biomedica") / "commercial"
    good = {}
    with ShardWriter(folder, shard_size=8) as writer:
        for index in range(GOOD):
            key = f"PMC{1000 + index}-fig{index}"
            writer.write(key, picture((48, 40), index), f"caption {index}", metadata(index))
            good[key] = metadata(index)
        writer.write("PMC2000-corrupt", b"\xff\xd8 broken", "a corrupt clinical image", metadata(0))
    # a sample without txt: ShardWriter always writes one, so this shard is written by hand
    with tarfile.open(folder / "000002.tar", "w") as tar:
        for name, data in (("PMC3000-nocaption.jpg", picture((48, 40))), ("PMC3000-nocaption.json", json.dumps(metadata(2)).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sizes = json.loads((folder / "sizes.json").read_text())
    (folder / "sizes.json").write_text(json.dumps({**sizes, "000002.tar": 1}))
    return {"pattern": str(folder / "{000000..000002}.tar"), "good": good, "corrupt": "PMC2000-corrupt", "uncaptioned": "PMC3000-nocaption"}


def prepare_csv(*args: str | Path):
    return CliRunner().invoke(app, ["prepare-csv", *map(str, args)], catch_exceptions=False)


def written_keys(out: Path) -> set[str]:
    """The sample keys of a CSV written with --extra-column __key__."""
    with out.open(newline="", encoding="utf-8") as stream:
        return {row["__key__"] for row in csv.DictReader(stream)}


def rejected_sources(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as stream:
        return [row["source"] for row in csv.DictReader(stream)]


def balance(written: int, filtered: int, rejected: int) -> str:
    return f"{written} written + {filtered} filtered out by --where + {rejected} rejected = {written + filtered + rejected} read"


TOTAL = GOOD + 2  # the corrupt sample and the uncaptioned one


# --- --where and --classes -----------------------------------------------------------------------

def test_classes_keep_one_class_and_every_sample_is_accounted_for(shards: dict, tmp_path: Path):
    out = tmp_path / "train.csv"
    result = prepare_csv(shards["pattern"], "--classes", "clinical-imaging", "--out", out, "--extra-column", "__key__", "--check-images")

    assert result.exit_code == 0, result.stderr
    clinical = {key for key, meta in shards["good"].items() if meta["image_primary_label"] == ["Clinical Imaging"]}
    assert written_keys(out) == clinical
    # the corrupt clinical image is rejected; the uncaptioned plot is filtered out, not rejected for its missing caption
    assert [source.rsplit(":", 1)[1] for source in rejected_sources(tmp_path / "train.rejects.csv")] == [shards["corrupt"]]
    filtered = TOTAL - len(clinical) - 1
    assert balance(len(clinical), filtered, 1) in result.stdout
    assert f"filtered  {filtered:>10}  not kept by --where image_primary_label in [\"Clinical Imaging\"]" in result.stdout


def test_licence_prefix_anded_with_a_list_field(shards: dict, tmp_path: Path):
    out = tmp_path / "train.csv"
    result = prepare_csv(shards["pattern"], "--where", 'article_license startswith "CC BY"',
                         "--where", 'not article_mesh_terms contains "Mice"', "--out", out, "--extra-column", "__key__")

    assert result.exit_code == 0, result.stderr
    expected = {key for key, meta in shards["good"].items()
                if meta["article_license"].startswith("CC BY") and "Mice" not in meta["article_mesh_terms"]}
    # CC BY 4.0 (humans) and CC BY-SA (rats); not CC BY-NC (mice), not CC0. Without --check-images the corrupt clinical image
    # (CC BY 4.0, humans) is written too (training skips it), and the uncaptioned plot (CC0) is filtered out: nothing is rejected
    assert expected and written_keys(out) == expected | {shards["corrupt"]}
    assert balance(len(expected) + 1, TOTAL - len(expected) - 1, 0) in result.stdout


@pytest.mark.parametrize("expression, labels", [
    ('image_primary_label == "Immuno Assays"', {"Immuno Assays"}),  # the second element of a list
    ('image_primary_label in ["Plots and Charts", "Clinical Imaging"] and image_panel_type == "single"', {"Plots and Charts",
                                                                                                          "Clinical Imaging"}),
    ('image_primary_label != "Microscopy"', {"Plots and Charts", "Clinical Imaging"}),
])
def test_list_fields_match_any_element(shards: dict, tmp_path: Path, expression: str, labels: set[str]):
    out = tmp_path / "train.csv"
    result = prepare_csv(shards["pattern"], "--where", expression, "--out", out, "--extra-column", "__key__", "--check-images")

    assert result.exit_code == 0, result.stderr
    expected = {key for key, meta in shards["good"].items() if labels & set(meta["image_primary_label"])}
    assert written_keys(out) == expected
    rejected = len(rejected_sources(tmp_path / "train.rejects.csv"))
    assert balance(len(expected), TOTAL - len(expected) - rejected, rejected) in result.stdout


def test_classes_and_where_are_anded(shards: dict, tmp_path: Path):
    out = tmp_path / "train.csv"
    result = prepare_csv(shards["pattern"], "--classes", "Microscopy,plots-and-charts", "--where", 'article_license == "CC BY-SA"',
                         "--out", out, "--extra-column", "__key__")

    assert result.exit_code == 0, result.stderr
    assert written_keys(out) == {key for key, meta in shards["good"].items() if meta["article_license"] == "CC BY-SA"}


def test_a_filter_that_keeps_nothing_writes_empty_outputs_and_says_so(shards: dict, tmp_path: Path):
    out, shard_dir = tmp_path / "train.csv", tmp_path / "shards"
    result = prepare_csv(shards["pattern"], "--where", 'image_panel_type == "stacked"', "--out", out, "--shards", shard_dir)

    assert result.exit_code == 1  # as when every row is rejected
    assert out.read_text(encoding="utf-8") == "filepath,caption\n"
    assert json.loads((shard_dir / "sizes.json").read_text()) == {} and not list(shard_dir.glob("*.tar"))
    assert balance(0, TOTAL, 0) in result.stdout and "bmclip train" not in result.stdout
    assert f"--where kept none of the {TOTAL} rows read ({TOTAL} filtered out, 0 rejected)" in result.stderr
    assert not (tmp_path / "train-images").exists() or not any((tmp_path / "train-images").rglob("*.jpg"))


def test_a_field_no_sample_has_is_a_warning_not_a_stop(shards: dict, tmp_path: Path):
    out = tmp_path / "train.csv"
    result = prepare_csv(shards["pattern"], "--where", 'image_panel_typ != "multiple"', "--out", out)

    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "--where" in line]
    assert len(warning) == 1 and "warning" in warning[0]
    assert "field 'image_panel_typ' is in none of the" in warning[0] and "did you mean 'image_panel_type'?" in warning[0]
    assert balance(TOTAL - 1, 0, 1) in result.stdout  # a missing field is != "multiple": everything kept (the uncaptioned one rejected)


@pytest.mark.parametrize("args, option, message", [
    (["--where", 'image_primary_label = "Microscopy"'], "--where", "expected '==' (two characters) at column 21"),
    (["--where", 'article_license startswith CC'], "--where", "expected a string after startswith"),
    (["--where", 'image_panel_type == "single"', "--where", '(a == 1'], "--where", "expected ')'"),
    (["--where", 'image_primary_label == "Microscopy" AND x == 1'], "--where", "keywords are lowercase: write and"),
    (["--classes", "microscopie"], "--classes", "did you mean 'microscopy'?"),
    (["--classes", ","], "--classes", "no class named"),
])
def test_a_bad_filter_is_one_line_before_anything_is_read(shards: dict, tmp_path: Path, args: list[str], option: str, message: str):
    before = sorted(tmp_path.rglob("*"))
    result = prepare_csv(shards["pattern"], *args, "--out", tmp_path / "train.csv", "--shards", tmp_path / "shards")

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(f"bmclip: error: {option}: ")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_a_syntax_error_comes_before_the_sources_are_opened(tmp_path: Path):
    result = prepare_csv(tmp_path / "nowhere" / "{000000..000003}.tar", "--where", "x ==", "--out", tmp_path / "t.csv")

    assert result.exit_code == 2 and result.stderr.startswith("bmclip: error: --where: expected a value")


def test_where_on_a_folder_is_refused_in_one_line(tmp_path: Path):
    figures = write_figures(tmp_path / "figures")
    result = prepare_csv(figures.root, "--where", 'label == "x"', "--out", tmp_path / "train.csv")

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--where: " in result.stderr and "has no metadata to filter on" in result.stderr
    assert not (tmp_path / "train.csv").exists()


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return write_figures(tmp_path_factory.mktemp("lab") / "figures")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_where_on_a_table_reads_its_columns(figures: Figures, tmp_path: Path, suffix: str):
    records = metadata_records(figures, figures.root.parent)
    records[0]["label"] = None  # null in Parquet, an empty cell in a CSV: both read as missing
    table = write_metadata(records, tmp_path / f"meta{suffix}")
    Path(tmp_path / "figures").symlink_to(figures.root)
    out = tmp_path / "train.csv"
    result = prepare_csv(table, "--image-column", "path", "--caption-column", "legend", "--extra-column", "label",
                         "--where", 'label in ["label 1", null]', "--out", out)

    assert result.exit_code == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as stream:
        labels = [row["label"] for row in csv.DictReader(stream)]
    kept = [r for r in records[:GOOD_FIGURES] if r["label"] in ("label 1", None)]
    assert sorted(labels) == sorted(r["label"] or "" for r in kept) and "" in labels
    # the missing file (label 0) is filtered out; the empty caption (label 1) is kept, then rejected
    assert balance(len(kept), len(records) - len(kept) - 1, 1) in result.stdout


def test_where_names_a_column_the_table_lacks(figures: Figures, tmp_path: Path):
    table = write_metadata(metadata_records(figures, figures.root.parent), figures.root.parent / "meta-lacks.csv")
    result = prepare_csv(table, "--image-column", "path", "--caption-column", "legend", "--where", 'lable == "label 1"',
                         "--out", tmp_path / "train.csv")

    assert result.exit_code == 1  # the missing column reads as missing everywhere: nothing kept
    assert "--where: field 'lable' is not a column of" in result.stderr and "did you mean 'label'?" in result.stderr


# --- --resize ------------------------------------------------------------------------------------

def oriented_jpeg(size: tuple[int, int], orientation: int) -> bytes:
    """A JPEG stored `size` with an EXIF orientation tag."""
    from PIL import Image

    image = Image.open(io.BytesIO(picture(size)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def sixteen_bit_png(size: tuple[int, int]) -> bytes:
    import numpy as np
    from PIL import Image

    values = (np.linspace(0, 4095, size[0] * size[1]).reshape(size[1], size[0])).astype(np.uint16)
    return encoded(Image.fromarray(values), "PNG")


@pytest.fixture(scope="module")
def large_shards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One shard of figures of several shapes and formats: {key: (bytes, ext, the upright size)}."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("large") / "shards"
    png = io.BytesIO()
    Image.open(io.BytesIO(picture((500, 260)))).save(png, format="PNG")
    figures = {
        "landscape": (picture((640, 480)), "jpg", (640, 480)),
        "portrait": (picture((300, 900)), "jpg", (300, 900)),
        "small": (picture((120, 90)), "jpg", (120, 90)),
        "exact": (picture((128, 200)), "jpg", (128, 200)),
        "plot": (png.getvalue(), "png", (500, 260)),
        "rotated": (oriented_jpeg((400, 300), 6), "jpg", (300, 400)),  # stored landscape, shown portrait
        "ct16": (sixteen_bit_png((256, 192)), "png", (256, 192)),
    }
    with ShardWriter(folder, shard_size=100) as writer:
        for key, (data, ext, _) in figures.items():
            writer.write(key, data, f"figure {key}", metadata(0), ext)
    return {"pattern": str(folder / "000000.tar"), **figures}


def shard_members(folder: Path) -> dict[str, tuple[str, bytes]]:
    """{source key: (image extension, image bytes)} of every sample in the shards of `folder`."""
    import webdataset

    members = {}
    for sample in webdataset.WebDataset(str(folder / "000000.tar"), shardshuffle=False):
        ext = next(e for e in ("jpg", "png") if e in sample)
        members[json.loads(sample["json"])["bmclip_source"].rsplit(":", 1)[-1]] = (ext, sample[ext])
    return members


def size_of(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


def expected_size(size: tuple[int, int], short: int) -> tuple[int, int]:
    width, height = size
    if min(size) <= short:
        return size
    return (short, round(height * short / width)) if width <= height else (round(width * short / height), short)


def mean_difference(data: bytes, reference: bytes) -> float:
    """Mean absolute difference (0-255) between an image and a reference read upright and scaled to its size."""
    import numpy as np
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data)).convert("RGB")
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(reference))).convert("RGB").resize(image.size, Image.Resampling.LANCZOS)
    return float(np.abs(np.asarray(image, dtype=float) - np.asarray(upright, dtype=float)).mean())


def test_resize_shards_downscales_large_images_and_copies_small_ones(large_shards: dict, tmp_path: Path):
    out = tmp_path / "shards"
    result = prepare_csv(large_shards["pattern"], "--resize", 128, "--shards", out)

    assert result.exit_code == 0, result.stderr
    members = shard_members(out)
    assert set(members) == {"landscape", "portrait", "small", "exact", "plot", "rotated", "ct16"}
    for key, (ext, data) in members.items():
        original, original_ext, upright = large_shards[key]
        width, height = size_of(data)
        if min(upright) <= 128:
            assert data == original and ext == original_ext, key  # byte for byte
            continue
        assert abs(min(width, height) - 128) <= 1, (key, width, height)
        assert abs(width / height - upright[0] / upright[1]) < 0.02, (key, width, height)
        assert (width, height) == expected_size(upright, 128), key
        assert ext == ("jpg" if original_ext == "jpg" else "png"), key
    assert members["rotated"][1][:3] == b"\xff\xd8\xff" and size_of(members["rotated"][1]) == (128, 171)  # upright now
    for key in ("landscape", "portrait", "rotated", "plot"):
        assert mean_difference(members[key][1], large_shards[key][0]) < 4, key
    resized = sum(1 for key in members if min(large_shards[key][2]) > 128)
    assert resized == 5 and f"resized   {resized} images downscaled to a short side of 128 pixels" in result.stdout
    assert "7 written + 0 rejected = 7 read" in result.stdout


def test_resize_applies_to_images_extracted_for_a_csv(large_shards: dict, tmp_path: Path):
    out = tmp_path / "train.csv"
    result = prepare_csv(large_shards["pattern"], "--resize", 200, "--out", out, "--extra-column", "__key__", "--check-images")

    assert result.exit_code == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as stream:
        files = {row["__key__"]: Path(row["filepath"]) for row in csv.DictReader(stream)}
    for key, path in files.items():
        original, original_ext, upright = large_shards[key]
        assert path.is_relative_to(tmp_path / "train-images")
        if min(upright) <= 200:
            assert path.read_bytes() == original and path.suffix == f".{original_ext}", key
        else:
            assert size_of(path.read_bytes()) == expected_size(upright, 200), key
    assert files["ct16"].suffix == ".png" and files["landscape"].suffix == ".jpg"


def test_resize_reads_folder_figures_into_shards(tmp_path: Path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "wide.jpg").write_bytes(picture((400, 200)))
    (tmp_path / "figures" / "wide.txt").write_text("a wide figure")
    (tmp_path / "figures" / "tiny.jpg").write_bytes(picture((60, 40)))
    (tmp_path / "figures" / "tiny.txt").write_text("a tiny figure")
    result = prepare_csv(tmp_path / "figures", "--resize", 64, "--shards", tmp_path / "shards")

    assert result.exit_code == 0, result.stderr
    members = shard_members(tmp_path / "shards")
    sizes = sorted(size_of(data) for _, data in members.values())
    assert sizes == [(60, 40), (128, 64)]


@pytest.mark.parametrize("args, message", [
    (["--resize", "31", "--shards", "SHARDS"], "31 pixels is too small a short side (the least is 32); pass --resize 32 or more"),
    (["--resize", "0", "--shards", "SHARDS"], "too small a short side"),
    (["--resize", "-5", "--shards", "SHARDS"], "too small a short side"),
])
def test_a_bad_resize_is_one_line(large_shards: dict, tmp_path: Path, args: list[str], message: str):
    before = sorted(tmp_path.rglob("*"))
    result = prepare_csv(large_shards["pattern"], *[str(tmp_path / "shards") if a == "SHARDS" else a for a in args])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("bmclip: error: --resize: ")
    assert message in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_resize_with_nothing_to_resize_is_refused(figures: Figures, tmp_path: Path):
    result = prepare_csv(figures.root, "--resize", 256, "--out", tmp_path / "train.csv")

    assert result.exit_code == 2
    assert result.stderr.startswith("bmclip: error: --resize: has nothing to resize") and "--shards DIR" in result.stderr
    assert not (tmp_path / "train.csv").exists()
