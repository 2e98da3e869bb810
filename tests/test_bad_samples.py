"""Training on data with broken figures: two ranks skip exactly the unreadable samples, list them, and stop past the limit.

The broken files are real: a truncated JPEG, a zero-byte file, a text file named .jpg, a path that
does not exist, an empty caption; in a CSV and inside webdataset shards.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import pytest
from conftest import run_bmclip
from hub_server import FakeHub, HubServer, hf_url

from biomedclip_cli.runs.bad_samples import BAD_SAMPLES_FILE, recorded_bad_samples
from biomedclip_cli.runs.folder import epoch_checkpoints

pytestmark = pytest.mark.slow

TWO_RANKS = ("--model", "bmclip-tiny", "--nproc-per-node", "2", "--batch-size", "16", "--lr", "1e-3", "--warmup", "2",
             "--precision", "fp32", "--epochs", "2")


def first_jpeg(rows: list[dict[str, str]]) -> Path:
    """The first demo figure stored as JPEG (the broken samples are JPEG downloads gone wrong)."""
    return next(Path(row["filepath"]) for row in rows if row["filepath"].endswith(".jpg"))


def broken_figures(folder: Path, figure: Path) -> dict[str, tuple[bytes | None, str]]:
    """Name -> (file bytes, or None for a file that does not exist; caption) of each kind of broken sample."""
    data = figure.read_bytes()
    return {
        "truncated": (data[: len(data) // 3], "a chest x-ray cut short by an interrupted download"),
        "zero-byte": (b"", "a figure that was never written"),
        "not-an-image": (b"Figure 2: this is a caption saved as .jpg", "a text file with an image name"),
        "missing": (None, "a figure whose file is gone"),
        "empty-caption": (data, "   "),
    }


def csv_with_broken_rows(folder: Path, demo_csv: Path) -> tuple[Path, set[str]]:
    """The demo CSV with one row of each broken kind spread through it; the broken rows' image paths."""
    rows = list(csv.DictReader(demo_csv.open(encoding="utf-8")))
    broken: set[str] = set()
    for index, (name, (data, caption)) in enumerate(broken_figures(folder, first_jpeg(rows)).items()):
        path = folder / f"{name}.jpg"
        if data is not None:
            path.write_bytes(data)
        rows.insert(30 * index + 11, {"filepath": str(path), "caption": caption, "label": "broken"})
        broken.add(str(path))
    out = folder / "broken.csv"
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=["filepath", "caption", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return out, broken


def add_to_tar(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def shards_with_broken_samples(folder: Path, demo_csv: Path) -> tuple[str, set[str]]:
    """Two shards of the demo figures with one sample of each broken kind inside; the pattern and the broken samples' keys."""
    rows = list(csv.DictReader(demo_csv.open(encoding="utf-8")))
    broken = broken_figures(folder, first_jpeg(rows))
    for shard in range(2):
        with tarfile.open(folder / f"{shard:06d}.tar", "w") as tar:
            for index, row in enumerate(rows[shard::2]):
                image = Path(row["filepath"])
                add_to_tar(tar, f"s{shard}-{index:04d}{image.suffix}", image.read_bytes())
                add_to_tar(tar, f"s{shard}-{index:04d}.txt", row["caption"].encode())
            for name, (data, caption) in broken.items():
                if shard == 0:
                    if data is not None:
                        add_to_tar(tar, f"broken-{name}.jpg", data)
                    add_to_tar(tar, f"broken-{name}.txt", caption.encode())
    return str(folder / "{000000..000001}.tar"), {f"broken-{name}" for name in broken}


def test_a_csv_with_broken_figures_trains_and_lists_exactly_those(demo_data, tmp_path: Path):
    broken_csv, broken = csv_with_broken_rows(tmp_path, demo_data.train_csv)
    result = run_bmclip("train", "--train-data", str(broken_csv), *TWO_RANKS, "--workers", "1", "--max-bad-samples", "10",
                        "--logs", str(tmp_path / "logs"), "--name", "csv")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "logs" / "csv"
    assert [p.name for p in epoch_checkpoints(run_dir)] == ["epoch_1.pt", "epoch_2.pt"]
    listed = recorded_bad_samples(run_dir)
    assert {sample.sample for sample in listed} == broken and len(listed) == len(broken), listed
    reasons = {Path(sample.sample).stem: sample.reason for sample in listed}
    assert reasons["missing"].startswith("FileNotFoundError") and reasons["empty-caption"] == "empty caption"
    assert "truncated" in reasons["truncated"] and reasons["zero-byte"].startswith("UnidentifiedImageError")
    assert f"bad samples     5 skipped, listed in {run_dir / BAD_SAMPLES_FILE}" in result.stdout


def test_shards_with_broken_samples_train_and_list_exactly_those(demo_data, tmp_path: Path):
    pattern, broken = shards_with_broken_samples(tmp_path, demo_data.train_csv)
    # Read each shard whole, once an epoch (one shard a rank): every broken sample is met, by construction.
    result = run_bmclip("train", "--train-data", pattern, "--no-dataset-resampled", "--train-num-samples", "200", *TWO_RANKS,
                        "--workers", "1", "--max-bad-samples", "10", "--logs", str(tmp_path / "logs"), "--name", "shards")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "logs" / "shards"
    assert [p.name for p in epoch_checkpoints(run_dir)] == ["epoch_1.pt", "epoch_2.pt"]
    listed = recorded_bad_samples(run_dir)
    assert {sample.sample for sample in listed} == broken, listed
    assert {sample.source for sample in listed} == {str(tmp_path / "000000.tar")}
    reasons = {sample.sample: sample.reason for sample in listed}
    assert (reasons["broken-missing"], reasons["broken-empty-caption"], reasons["broken-zero-byte"]) == (
        "no image", "empty caption", "zero-byte image")


def test_hub_shards_with_broken_samples_stream_and_list_exactly_those(demo_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    local = tmp_path / "shards"
    local.mkdir()
    _, broken = shards_with_broken_samples(local, demo_data.train_csv)
    hub = FakeHub()
    hub.add_folder("lab/figures", "shards", local)
    with HubServer(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        result = run_bmclip("train", "--train-data", hf_url("lab/figures", "shards/{000000..000001}.tar"), "--no-dataset-resampled",
                            "--train-num-samples", "200", *TWO_RANKS, "--workers", "1", "--max-bad-samples", "10",
                            "--logs", str(tmp_path / "logs"), "--name", "hub")
    assert result.returncode == 0, result.stderr[-3000:]
    listed = recorded_bad_samples(tmp_path / "logs" / "hub")
    assert {sample.sample for sample in listed} == broken, listed
    assert {sample.source for sample in listed} == {hf_url("lab/figures", "shards/000000.tar")}, listed


def test_past_max_bad_samples_the_run_stops_with_one_line_naming_the_first(demo_data, tmp_path: Path):
    broken_csv, _ = csv_with_broken_rows(tmp_path, demo_data.train_csv)
    result = run_bmclip("train", "--train-data", str(broken_csv), *TWO_RANKS, "--workers", "0", "--max-bad-samples", "2",
                        "--logs", str(tmp_path / "logs"), "--name", "stopped")
    assert result.returncode == 1
    [cause] = [line for line in result.stdout.splitlines() if line.lstrip().startswith("cause")]
    assert "TooManyBadSamples: 3 samples could not be read, more than --max-bad-samples 2; first: " in cause, cause
    assert f"all in {tmp_path / 'logs' / 'stopped' / BAD_SAMPLES_FILE}; bmclip prepare-csv --check-images finds them" in cause, cause
    assert len(recorded_bad_samples(tmp_path / "logs" / "stopped")) == 3


def test_a_rank_that_raises_is_named_as_the_cause_not_the_rank_that_lost_its_peer(demo_data, tmp_path: Path):
    # A file where rank 0 creates the checkpoints folder: rank 0 raises at start, and rank 1 loses its peer.
    run_dir = tmp_path / "logs" / "raises"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoints").write_text("not a folder")
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), *TWO_RANKS, "--workers", "0", "--resume", "auto",
                        "--logs", str(tmp_path / "logs"), "--name", "raises")
    assert result.returncode == 1
    # Rank 1 then either fails in gloo ("Connection closed by peer") or is stopped by torchrun first: whichever, it is not the cause.
    assert (run_dir / "ranks" / "rank-1.log").is_file()
    assert "Connection closed by peer" not in result.stdout + result.stderr, "the console shows the cause, not its echoes"
    [cause] = [line for line in result.stdout.splitlines() if line.lstrip().startswith("cause")]
    assert cause.split(None, 1)[1].startswith(f"FileExistsError: [Errno 17] File exists: '{run_dir / 'checkpoints'}' (main.py:"), cause
    assert cause.endswith(", rank 0)"), cause
