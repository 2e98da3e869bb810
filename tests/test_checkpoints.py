"""Checkpoint files: which are complete, atomic saves under a kill, keeping the newest K, the worker's resume lookup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from run_folders import save_checkpoint, truncate
from waiting import wait_until

from biomedclip_cli.runs.checkpoints import incompleteness, looks_complete, newest_complete_checkpoint, prune_checkpoints
from biomedclip_cli.runs.folder import LOG_FILE, epoch_checkpoints


def test_a_saved_checkpoint_is_complete_and_a_truncated_one_is_not(tmp_path: Path):
    good = save_checkpoint(tmp_path, 1)
    assert incompleteness(good) is None and looks_complete(good)
    truncate(good)
    assert "truncated or corrupt" in incompleteness(good)
    assert not looks_complete(good)


def test_a_file_that_is_not_a_training_checkpoint_is_not_complete(tmp_path: Path):
    weights_only = tmp_path / "epoch_1.pt"
    torch.save({"w": torch.ones(2)}, weights_only)
    assert "not an open_clip training checkpoint" in incompleteness(weights_only)
    garbage = tmp_path / "epoch_2.pt"
    garbage.write_bytes(b"\0" * 1000)
    assert "truncated or corrupt" in incompleteness(garbage)


def test_newest_complete_checkpoint_skips_bad_files_newest_first(tmp_path: Path):
    for epoch in (1, 2, 3, 10):
        save_checkpoint(tmp_path, epoch)
    truncate(tmp_path / "checkpoints" / "epoch_10.pt")
    truncate(tmp_path / "checkpoints" / "epoch_3.pt")
    point = newest_complete_checkpoint(tmp_path)
    assert point.checkpoint == tmp_path / "checkpoints" / "epoch_2.pt"
    assert torch.load(point.checkpoint, weights_only=True)["epoch"] == 2
    assert [p.subject.rsplit("/", 1)[-1] for p in point.skipped] == ["epoch_10.pt", "epoch_3.pt"]
    assert newest_complete_checkpoint(tmp_path / "empty").checkpoint is None


def test_pruning_keeps_the_newest_k_and_never_deletes_for_an_incomplete_newest(tmp_path: Path):
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, epoch)
    (tmp_path / "checkpoints" / "epoch_1.pt.partial").write_bytes(b"left by a kill")
    truncate(tmp_path / "checkpoints" / "epoch_3.pt")
    assert prune_checkpoints(tmp_path, keep=1) == []
    save_checkpoint(tmp_path, 3)
    removed = prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["epoch_1.pt", "epoch_1.pt.partial"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_2.pt", "epoch_3.pt"]


def bytes_read_by_this_process() -> int:
    """Bytes this process has read through read() calls so far (Linux's /proc/self/io rchar; mapped pages do not count)."""
    return next(int(line.split()[1]) for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:"))


def test_pruning_checks_the_newest_without_reading_its_tensors(tmp_path: Path):
    save_checkpoint(tmp_path, 1)
    newest = tmp_path / "checkpoints" / "epoch_2.pt"
    torch.save({"epoch": 2, "state_dict": {"w": torch.rand(10_000_000)}, "optimizer": {}}, newest)
    before = bytes_read_by_this_process()
    removed = prune_checkpoints(tmp_path, keep=1)
    assert bytes_read_by_this_process() - before < newest.stat().st_size // 10, "the 40 MB checkpoint was read in full"
    assert [p.name for p in removed] == ["epoch_1.pt"]


SAVE_FOREVER = """
import sys, torch
from biomedclip_cli.rank.checkpoint_saves import atomic_checkpoint_save
save = atomic_checkpoint_save(torch.save, keep=None)
for epoch in range(1, 1000):
    save({"epoch": epoch, "state_dict": {"w": torch.rand(50_000_000)}}, f"{sys.argv[1]}/checkpoints/epoch_{epoch}.pt")
"""


@pytest.mark.slow
def test_a_kill_during_a_save_leaves_every_checkpoint_complete_or_absent(tmp_path: Path):
    (tmp_path / "checkpoints").mkdir()
    saver = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(tmp_path)], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        wait_until(lambda: list((tmp_path / "checkpoints").glob("epoch_2.pt.partial")), "epoch 2's save to start", 120, poll=0.01)
    finally:
        os.kill(saver.pid, signal.SIGKILL)
        saver.wait()
    assert (tmp_path / "checkpoints" / "epoch_2.pt.partial").exists(), "killed while writing epoch 2"
    assert [p.name for p in epoch_checkpoints(tmp_path)] in (["epoch_1.pt"], ["epoch_1.pt", "epoch_2.pt"])
    assert all(incompleteness(p) is None for p in epoch_checkpoints(tmp_path))
    assert newest_complete_checkpoint(tmp_path).skipped == []


@pytest.fixture
def lookup():
    from open_clip_train.main import get_latest_checkpoint
    from open_clip_train.params import parse_args

    from biomedclip_cli.rank.checkpoint_saves import ResumeLookup

    return ResumeLookup(parse_args, get_latest_checkpoint)


def test_the_worker_resumes_into_an_existing_log_through_open_clips_latest_path(lookup, tmp_path: Path):
    chosen = save_checkpoint(tmp_path / "run", 1)
    (tmp_path / "run" / LOG_FILE).write_text("")
    args = lookup.parse_args(["--logs", str(tmp_path), "--name", "run", "--resume", str(chosen)])
    assert args.resume == "latest"
    assert lookup.latest_checkpoint(str(tmp_path / "run" / "checkpoints"), remote=False) == str(chosen)


def test_the_worker_keeps_an_explicit_resume_for_a_new_run_folder(lookup, tmp_path: Path):
    chosen = save_checkpoint(tmp_path / "old", 1)
    args = lookup.parse_args(["--logs", str(tmp_path), "--name", "new", "--resume", str(chosen)])
    assert args.resume == str(chosen)


def test_the_worker_answers_latest_with_the_newest_complete_checkpoint(lookup, tmp_path: Path):
    save_checkpoint(tmp_path, 1)
    truncate(save_checkpoint(tmp_path, 2))
    assert lookup.latest_checkpoint(str(tmp_path / "checkpoints"), remote=False) == str(tmp_path / "checkpoints" / "epoch_1.pt")
    assert lookup.latest_checkpoint(str(tmp_path / "nothing" / "checkpoints"), remote=False) is None
