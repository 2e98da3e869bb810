"""A disk that fills up during training: the run stops at the checkpoint that does not fit and says so in words, every checkpoint
before it intact, nothing half-written left behind; resuming on the still-full disk is refused in one line.

The disk is real: a 100 MiB tmpfs mounted for the test (as root; skipped where mounting is not allowed). A checkpoint of the tiny
model with its optimizer state takes about 39 MiB, so two fit and the third does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_bmclip

from biomedclip_cli.disk_space import human_size
from biomedclip_cli.runs.folder import CONFIG_FILE, epoch_checkpoints

SMALL_DISK = "100m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on its own 100 MiB file system."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_words_and_resume_refuses_until_there_is_room(demo_data, small_disk: Path, tmp_path: Path):
    run_dir = small_disk / "logs" / "full"
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--batch-size", "20", "--epochs", "4",
                        "--lr", "1e-3", "--warmup", "2", "--precision", "fp32", "--nproc-per-node", "1", "--workers", "0",
                        "--logs", str(small_disk / "logs"), "--name", "full", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    checkpoints = run_dir / "checkpoints"
    [cause] = [line.strip() for line in result.stdout.splitlines() if line.lstrip().startswith("cause")]
    expected = f"cause           DiskFull: the disk is full: epoch_3.pt needs about 38.8 MiB in {checkpoints}, which has "
    assert cause.startswith(expected), cause
    assert "free; epoch_2.pt is intact (the unfinished file was removed); free space on that disk" in cause, cause
    assert f"to continue     bmclip resume {run_dir}" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "another checkpoint takes" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"bmclip: warning: {checkpoints} has "), result.stderr[-3000:]
    assert [path.name for path in epoch_checkpoints(run_dir)] == ["epoch_1.pt", "epoch_2.pt"]
    assert not list(run_dir.rglob("*.partial")), "no unfinished file is left taking the space"
    listed = run_bmclip("runs", str(small_disk / "logs"), "--json")
    assert [(run["name"], run["status"], run["detail"]) for run in json.loads(listed.stdout)] == [("full", "failed", "disk full")]

    config_before = (run_dir / CONFIG_FILE).read_bytes()
    resumed = run_bmclip("resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 2
    size = human_size((checkpoints / "epoch_2.pt").stat().st_size)
    assert resumed.stderr.strip().splitlines() == [
        f"bmclip: error: --logs: '{checkpoints}' has {human_size(shutil.disk_usage(checkpoints).free)} free, and each "
        f"checkpoint of this run takes {size}; free space on that disk (older epoch_K.pt files you no longer need), then run this again"]
    assert (run_dir / CONFIG_FILE).read_bytes() == config_before and not list(run_dir.rglob("*.partial"))

    (checkpoints / "epoch_1.pt").unlink()  # room for one more
    finished = run_bmclip("resume", str(run_dir), "--epochs", "3", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert [path.name for path in epoch_checkpoints(run_dir)] == ["epoch_2.pt", "epoch_3.pt"]


def test_sizes_are_said_in_units_a_person_reads():
    assert [human_size(n) for n in (0, 812, 18_200_000, 40_744_009, 1_503_238_553, 5 * 1024**4)] == [
        "0 B", "812 B", "17.4 MiB", "38.9 MiB", "1.4 GiB", "5.0 TiB"]
