"""`bmclip prepare-csv` on real files: figures with sidecar captions, metadata tables, BIOMEDICA-layout shards.

What it writes is read back the way training reads it: open_clip_train's CsvDataset, webdataset, and a
2-step `bmclip train` run.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from child_signals import default_signals
from conftest import REPO, run_bmclip
from prepare_inputs import GOOD_FIGURES, Figures, encoded, figure, metadata_records, write_biomedica_shards, write_figures, write_metadata
from typer.testing import CliRunner
from waiting import wait_until

from biomedclip_cli.cli import app
from biomedclip_cli.data.prepare.image_checks import CheckSettings
from biomedclip_cli.data.prepare.pipeline import Outputs, PrepareRequest, open_sources, prepare
from biomedclip_cli.data.prepare.rows import PANDAS_NA_VALUES
from biomedclip_cli.data.prepare.sources import ReadSettings
from biomedclip_cli.runs.folder import epoch_checkpoints, train_progress


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return write_figures(tmp_path_factory.mktemp("lab") / "figures")


def prepare_csv(*args: str | Path):
    """Run `bmclip prepare-csv ARGS` in-process; returns the click Result (stdout and stderr apart)."""
    return CliRunner().invoke(app, ["prepare-csv", *map(str, args)], catch_exceptions=False)


def rejects_by_source(path: Path) -> dict[str, str]:
    """The rejects file as {source: kind of reason}."""
    with path.open(newline="", encoding="utf-8") as stream:
        return {row["source"]: row["reason"].split(":")[0] for row in csv.DictReader(stream)}


def train_line(stdout: str) -> list[str]:
    """The first `bmclip train ...` line prepare-csv printed, as arguments."""
    return shlex.split(next(line for line in stdout.splitlines() if line.strip().startswith("bmclip train")))


def read_like_open_clip(path: Path):
    """open_clip_train's own CsvDataset over a written CSV, with a real transform and tokenizer; every item loaded."""
    import open_clip
    from open_clip_train.data import CsvDataset

    dataset = CsvDataset(str(path), open_clip.image_transform(32, is_train=False), img_key="filepath", caption_key="caption",
                         sep=",", tokenizer=open_clip.tokenize)
    for index in range(len(dataset)):
        image, text = dataset[index]
        assert tuple(image.shape) == (3, 32, 32) and text.numel() > 0
    return dataset


def test_folder_of_figures_is_checked_and_every_row_accounted_for(figures: Figures, tmp_path: Path):
    out = tmp_path / "data" / "train.csv"
    result = prepare_csv(figures.root, "--out", out, "--check-images", "--min-side", 16, "--dedupe", "--workers", 2)

    assert result.exit_code == 0, result.stderr
    assert rejects_by_source(tmp_path / "data" / "train.rejects.csv") == figures.rejected
    assert f"{GOOD_FIGURES} written + {len(figures.rejected)} rejected = {figures.rows} read" in result.stdout
    dataset = read_like_open_clip(out)
    assert dict(zip(map(Path, dataset.images), map(str, dataset.captions), strict=True)) == figures.good
    assert train_line(result.stdout) == ["bmclip", "train", "--train-data", str(out), "--csv-img-key", "filepath",
                                         "--csv-caption-key", "caption", "--csv-separator", ","]


def test_scanning_without_checks_decodes_nothing(figures: Figures, tmp_path: Path):
    result = prepare_csv(figures.root, "--out", tmp_path / "train.csv")

    assert result.exit_code == 0, result.stderr
    rejected = rejects_by_source(tmp_path / "train.rejects.csv")
    undecoded = {"corrupt.jpg", "truncated.jpg", "tiny.png", "sub/fig_00_copy.jpg"}
    assert {str(figures.root / name) for name in undecoded}.isdisjoint(rejected)
    assert set(rejected.values()) == {"no caption", "no image", "empty caption"}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_metadata_table_names_images_relative_to_itself(figures: Figures, tmp_path: Path, suffix: str):
    table = write_metadata(metadata_records(figures, figures.root.parent), figures.root.parent / f"meta{suffix}")
    out = tmp_path / "train.csv"
    result = prepare_csv(table, "--image-column", "path", "--caption-column", "legend", "--extra-column", "label",
                         "--out", out, "--workers", 1, "--check-images")

    assert result.exit_code == 0, result.stderr
    assert rejects_by_source(tmp_path / "train.rejects.csv") == {f"{table} row {GOOD_FIGURES + 1}": "missing file",
                                                                 f"{table} row {GOOD_FIGURES + 2}": "empty caption"}
    dataset = read_like_open_clip(out)
    assert dict(zip(map(Path, dataset.images), map(str, dataset.captions), strict=True)) == figures.good
    with out.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["filepath", "caption", "label"] and {row["label"] for row in rows} == {"label 0", "label 1", "label 2"}


def test_biomedica_shards_become_a_csv_with_extracted_images_and_label_columns(tmp_path: Path):
    samples = write_biomedica_shards(tmp_path / "biomedica" / "commercial", samples=10, per_shard=4)
    pattern = str(tmp_path / "biomedica" / "commercial" / "{000000..000002}.tar")
    out = tmp_path / "data" / "train.csv"
    result = prepare_csv(pattern, "--out", out, "--extra-column", "image_primary_label", "--extra-column", "__key__", "--check-images")

    assert result.exit_code == 0, result.stderr
    assert sorted(rejects_by_source(tmp_path / "data" / "train.rejects.csv").values()) == ["no caption", "unreadable image"]
    dataset = read_like_open_clip(out)
    assert all(Path(image).is_relative_to(tmp_path / "data" / "train-images") for image in dataset.images)
    with out.open(newline="", encoding="utf-8") as stream:
        rows = {row["__key__"]: row for row in csv.DictReader(stream)}
    assert {key: row["caption"] for key, row in rows.items()} == {key: sample["caption"] for key, sample in samples.items()}
    labels = {key: sample["image_primary_label"][0] for key, sample in samples.items()}
    assert {key: row["image_primary_label"] for key, row in rows.items()} == labels


def test_caption_from_a_json_field(tmp_path: Path):
    samples = write_biomedica_shards(tmp_path / "shards", samples=4, per_shard=10)
    result = prepare_csv(tmp_path / "shards" / "000000.tar", "--caption-field", "article_title", "--out", tmp_path / "train.csv")

    assert result.exit_code == 0, result.stderr
    with (tmp_path / "train.csv").open(newline="", encoding="utf-8") as stream:
        captions = sorted(row["caption"] for row in csv.DictReader(stream))
    assert captions == sorted([sample["article_title"] for sample in samples.values()] + ["x", "y"])


def test_shards_out_in_biomedica_layout_read_back_by_webdataset(figures: Figures, tmp_path: Path):
    import webdataset

    shards = tmp_path / "shards"
    result = prepare_csv(figures.root, "--shards", shards, "--shard-size", 5, "--val-fraction", 0.25, "--check-images", "--dedupe",
                         "--min-side", 16)

    assert result.exit_code == 0, result.stderr
    line = train_line(result.stdout)
    written = {}
    for pattern, count in ((line[3], int(line[5])), (line[7], int(line[9]))):
        samples = list(webdataset.WebDataset(pattern, shardshuffle=False).decode("pil"))
        assert len(samples) == count == sum(json.loads((Path(pattern).parent / "sizes.json").read_text()).values())
        assert all({"txt", "json"} <= set(sample) and ({"jpg", "png"} & set(sample)) for sample in samples)
        written.update({sample["json"]["bmclip_source"]: sample["txt"] for sample in samples})
    assert written == {str(path): caption for path, caption in figures.good.items()}
    assert not (tmp_path / "train.csv").exists() and (tmp_path / "shards.rejects.csv").is_file()
    dry_run = CliRunner().invoke(app, [*line[1:], "--model", "bmclip-tiny", "--dry-run"])
    assert dry_run.exit_code == 0, dry_run.stderr
    assert f"--train-num-samples {line[5]} --val-num-samples {line[9]}" in dry_run.stdout


def test_split_is_deterministic_and_keeps_groups_together(figures: Figures, tmp_path: Path):
    table = write_metadata(metadata_records(figures, figures.root.parent), tmp_path / "meta.csv")
    Path(tmp_path / "figures").symlink_to(figures.root)

    def split(seed: int, name: str) -> tuple[list[list[str]], list[list[str]]]:
        out = tmp_path / name / "train.csv"
        result = prepare_csv(table, "--image-column", "path", "--caption-column", "legend", "--group-by", "article",
                             "--val-fraction", 0.4, "--seed", seed, "--out", out)
        assert result.exit_code == 0, result.stderr
        return [list(csv.reader((out.parent / f).open(newline="", encoding="utf-8"))) for f in ("train.csv", "val.csv")]

    train, val = split(7, "a")
    assert split(7, "b") == [train, val]
    assert split(8, "c") != [train, val]
    assert len(train) - 1 + len(val) - 1 == GOOD_FIGURES
    articles = train[0].index("article")
    assert {row[articles] for row in train[1:]}.isdisjoint(row[articles] for row in val[1:])
    assert len(val) > 1 and len(train) > 1


def test_na_values_match_pandas():
    from pandas._libs.parsers import STR_NA_VALUES

    assert PANDAS_NA_VALUES == STR_NA_VALUES


@pytest.mark.parametrize("make_args, option, message", [
    (lambda d, f: [d / "nowhere", "--out", d / "t.csv"], "nowhere", "does not exist"),
    (lambda d, f: [_write(d / "m.csv", b"\xff\xfe\x00garbage"), "--out", d / "t.csv"], "m.csv", "is not UTF-8 text"),
    (lambda d, f: [_write(d / "m.parquet", b"not parquet"), "--out", d / "t.csv"], "m.parquet", "is not a Parquet file"),
    (lambda d, f: [write_metadata(metadata_records(f, f.root.parent), d / "m.csv"), "--image-column", "pth",
                   "--caption-column", "legend", "--out", d / "t.csv"], "--image-column", "pass --image-column path"),
    (lambda d, f: [f.root, "--extra-column", "lable", "--out", d / "t.csv"], "--extra-column", "no source has"),
    (lambda d, f: [f.root], "--out", "nothing to write"),
    (lambda d, f: [f.root, "--out", _write(d / "t.csv", b"old")], "--out", "already exists; pass --overwrite"),
    (lambda d, f: [f.root, "--out", d / "t.csv", "--rejects", d / "t.csv"], "--rejects", "is also given to --out"),
    (lambda d, f: [d / "missing" / "{000000..000003}.tar", "--out", d / "t.csv"], "{000000..000003}.tar", "matches no shard"),
    (lambda d, f: ["https://example.org/shards/000000.tar", "--out", d / "t.csv"], "https://",
     "prepare-csv reads local files and hf:// shards"),
])
def test_bad_input_is_one_line_and_writes_nothing(figures: Figures, tmp_path: Path, make_args, option: str, message: str):
    args = make_args(tmp_path, figures)
    before = sorted(tmp_path.rglob("*"))
    result = prepare_csv(*args)

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("bmclip: error: ")
    assert option in result.stderr and message in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_overwrite_replaces_outputs(figures: Figures, tmp_path: Path):
    out = tmp_path / "train.csv"
    out.write_text("stale")
    result = prepare_csv(figures.root, "--out", out, "--overwrite")

    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("filepath,caption\n")


def test_nothing_left_to_train_on_is_a_failure(figures: Figures, tmp_path: Path):
    result = prepare_csv(figures.root, "--out", tmp_path / "train.csv", "--min-side", 10_000)

    assert result.exit_code == 1
    assert f"0 written + {figures.rows} rejected = {figures.rows} read" in result.stdout and "bmclip train" not in result.stdout
    assert "no row was written" in result.stderr


def test_memory_stays_flat_in_the_number_of_rows(figures: Figures, tmp_path: Path):
    image = next(iter(figures.good))

    def peak_bytes(rows: int) -> int:
        table = tmp_path / f"meta{rows}.csv"
        table.write_text("filepath,caption\n" + f"{image},a figure caption of some length\n" * rows, encoding="utf-8")
        outputs = Outputs(tmp_path / f"train{rows}.csv", None, tmp_path / f"rejects{rows}.csv", None, None, None)
        request = PrepareRequest((str(table),), outputs, ReadSettings(), CheckSettings())
        sources = open_sources([str(table)], request.read)
        tracemalloc.start()
        result = prepare(request, sources)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.train == rows
        return peak

    assert peak_bytes(20_000) < peak_bytes(2_000) + 1_000_000


def test_ctrl_c_leaves_no_half_written_csv(tmp_path: Path):
    # The last figure's caption is a FIFO no one writes to: prepare-csv blocks there, mid-way, for as long as it takes.
    (tmp_path / "figures").mkdir()
    for index in range(5):
        (tmp_path / "figures" / f"{index}.jpg").write_bytes(encoded(figure(index), "JPEG"))
        (tmp_path / "figures" / f"{index}.txt").write_text(f"figure {index}")
    (tmp_path / "figures" / "stuck.jpg").write_bytes(encoded(figure(9), "JPEG"))
    os.mkfifo(tmp_path / "figures" / "stuck.txt")
    out = tmp_path / "train.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "biomedclip_cli", "prepare-csv", str(tmp_path / "figures"), "--out", str(out)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)

    def writing() -> bool:
        if (tmp_path / "train.csv.partial").exists():
            return True
        assert process.poll() is None, process.communicate()
        return False

    try:
        wait_until(writing, "prepare-csv to start writing", 240, poll=0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figures"]


def test_an_interrupted_overwrite_leaves_no_sizes_json_beside_new_shards(figures: Figures, tmp_path: Path):
    shards = tmp_path / "shards"
    assert prepare_csv(figures.root, "--shards", shards, "--shard-size", 5).exit_code == 0
    assert (shards / "sizes.json").is_file()
    outputs = Outputs(None, None, tmp_path / "shards.rejects.csv", shards, None, None)
    request = PrepareRequest((str(figures.root),), outputs, shard_size=2, overwrite=True)

    def ctrl_c(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(request, open_sources(list(request.sources), request.read), ctrl_c)
    assert (shards / "000000.tar").is_file(), "new shards were written before the interruption"
    assert not (shards / "sizes.json").exists(), "the old sizes.json would count the new shards wrong"
    assert not [path.name for path in shards.iterdir() if path.name.endswith(".partial")]


def test_help_imports_nothing_heavy():
    from test_cli import HEAVY_MODULES, imported_modules

    assert not imported_modules("prepare-csv", "--help") & set(HEAVY_MODULES)


@pytest.mark.slow
def test_the_printed_train_line_trains_two_steps(figures: Figures, tmp_path: Path):
    result = prepare_csv(figures.root, "--out", tmp_path / "train.csv", "--check-images", "--min-side", 16, "--dedupe")
    assert result.exit_code == 0, result.stderr
    line = train_line(result.stdout)[1:] + ["--model", "bmclip-tiny", "--nproc-per-node", "2", "--batch-size", "4", "--epochs", "1",
                                            "--workers", "0", "--logs", str(tmp_path / "logs"), "--name", "prepared", "--precision", "fp32"]
    train = run_bmclip(*line)

    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = tmp_path / "logs" / "prepared"
    assert [path.name for path in epoch_checkpoints(run_dir)] == ["epoch_1.pt"]
    assert "world_size: 2" in (run_dir / "params.txt").read_text()
    assert f"[{GOOD_FIGURES}/{GOOD_FIGURES} (100%)]" in (run_dir / "out.log").read_text() and train_progress(run_dir)
