"""Fault tests with real processes: the tiny model, 2 ranks on CPU, killed and resumed.

Each run's folder name is unique, so the processes of a run are found by it in their command lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from child_signals import default_signals
from conftest import REPO, run_bmclip
from run_folders import processes_mentioning, truncate
from waiting import wait_until

from biomedclip_cli.runs.checkpoints import incompleteness
from biomedclip_cli.runs.folder import LAUNCH_FILE, LOG_FILE, TRAIN_LINE, epoch_checkpoints, read_run_config

pytestmark = pytest.mark.slow

TINY_RANKS = ("--model", "bmclip-tiny", "--nproc-per-node", "2", "--batch-size", "8", "--lr", "1e-3", "--warmup", "2", "--workers", "0")


def start_bmclip(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """`bmclip ARGS` started in the background, as from a user's shell."""
    return subprocess.Popen([sys.executable, "-m", "biomedclip_cli", *args], cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)


def log_has(run_dir: Path, text: str) -> bool:
    log = run_dir / LOG_FILE
    return log.exists() and text in log.read_text(errors="replace")


def assert_no_process_left(name: str) -> None:
    """No process of the run (bmclip, torchrun, a rank) is alive a few seconds after the stop."""
    wait_until(lambda: not processes_mentioning(name), "every process to exit", 20, poll=0.1)


def progress_after(run_dir: Path, marker: str) -> list[re.Match]:
    """The 'Train Epoch' lines of out.log after the first line containing `marker`."""
    lines = (run_dir / LOG_FILE).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    return [m for line in lines[start:] if (m := TRAIN_LINE.search(line))]


@dataclass
class KilledAndResumed:
    run_dir: Path
    checkpoints_at_kill: list[str]
    first_loss: float
    resume: subprocess.CompletedProcess[str]
    checkpoints_after: list[str]


@pytest.fixture(scope="module")
def killed_and_resumed(demo_data, tmp_path_factory) -> KilledAndResumed:
    """A run with a checkpoint every 320 samples (3 in all, newest 2 kept), SIGKILLed whole mid-epoch 2, then resumed from elsewhere."""
    launch_dir = tmp_path_factory.mktemp("launch")
    name = f"sigkill-{uuid.uuid4().hex[:8]}"
    run_dir = launch_dir / "logs" / name
    train = start_bmclip("train", "--train-data", demo_data.shards, *TINY_RANKS, "--checkpoint-every-samples", "320",
                         "--total-samples", "960", "--keep-checkpoints", "2", "--logs", "logs", "--name", name, cwd=launch_dir)
    wait_until(lambda: log_has(run_dir, "Train Epoch: 1 [") or train.poll() is not None, "epoch 2 to start", poll=0.1)
    for pid in processes_mentioning(name):
        os.kill(pid, signal.SIGKILL)
    train.communicate()
    assert_no_process_left(name)
    at_kill = [p.name for p in epoch_checkpoints(run_dir)]
    first_loss = float(TRAIN_LINE.search((run_dir / LOG_FILE).read_text())["loss"])
    resume = run_bmclip("resume", str(run_dir), cwd=tmp_path_factory.mktemp("elsewhere"))
    return KilledAndResumed(run_dir, at_kill, first_loss, resume, [p.name for p in epoch_checkpoints(run_dir)])


def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(killed_and_resumed: KilledAndResumed):
    run = killed_and_resumed
    assert run.checkpoints_at_kill == ["epoch_1.pt"], "killed during epoch 2"
    assert run.resume.returncode == 0, run.resume.stderr[-3000:]
    assert run.checkpoints_after == ["epoch_2.pt", "epoch_3.pt"], "3 epochs of 320 samples, the newest 2 kept"
    assert "epochs done     3 of 3" in run.resume.stdout
    assert read_run_config(run.run_dir).resume == "auto", "its bmclip.yaml continues from the newest checkpoint when trained again"


def test_resume_continues_from_the_checkpoints_step_not_from_scratch(killed_and_resumed: KilledAndResumed):
    run = killed_and_resumed
    assert log_has(run.run_dir, "bmclip: continuing at epoch 1, step 20 of 60")
    resumed = progress_after(run.run_dir, "continuing at epoch 1")
    assert int(resumed[0]["epoch"]) == 1 and int(resumed[-1]["epoch"]) == 2
    assert float(resumed[0]["loss"]) < 0.9 * run.first_loss, (resumed[0]["loss"], run.first_loss)


def test_a_truncated_newest_checkpoint_is_skipped_and_trained_again(killed_and_resumed: KilledAndResumed):
    run_dir = killed_and_resumed.run_dir
    truncate(run_dir / "checkpoints" / "epoch_3.pt")
    result = run_bmclip("resume", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch_3.pt: skipped: it does not load, so it is truncated or corrupt" in result.stderr
    assert f"resuming from {run_dir / 'checkpoints' / 'epoch_2.pt'}" in result.stderr
    assert [p.name for p in epoch_checkpoints(run_dir)] == ["epoch_2.pt", "epoch_3.pt"]
    assert incompleteness(run_dir / "checkpoints" / "epoch_3.pt") is None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_every_rank_with_128_plus_its_number_and_leaves_a_resumable_run(demo_data, tmp_path: Path, signum: int):
    name = f"signal-{uuid.uuid4().hex[:8]}"
    run_dir = tmp_path / name
    train = start_bmclip("train", "--train-data", demo_data.shards, *TINY_RANKS, "--train-num-samples", "160", "--epochs", "3",
                         "--logs", str(tmp_path), "--name", name, cwd=tmp_path)
    wait_until(lambda: (run_dir / "checkpoints" / "epoch_1.pt").exists() or train.poll() is not None, "the first checkpoint", poll=0.1)
    train.send_signal(signum)
    _, stderr = train.communicate(timeout=120)
    assert train.returncode == 128 + signum, stderr[-3000:]
    assert_no_process_left(name)
    assert json.loads((run_dir / LAUNCH_FILE).read_text())["exit_status"] == 128 + signum
    again = run_bmclip("resume", str(run_dir), "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "--resume " in again.stdout and "/checkpoints/epoch_" in again.stdout


def test_the_same_train_command_with_resume_auto_finishes_a_run_whose_launcher_was_killed(demo_data, tmp_path: Path):
    name = f"auto-{uuid.uuid4().hex[:8]}"
    run_dir = tmp_path / "logs" / name
    command = ("train", "--train-data", demo_data.shards, *TINY_RANKS, "--train-num-samples", "160", "--epochs", "2",
               "--logs", "logs", "--name", name, "--resume", "auto")
    first = start_bmclip(*command, cwd=tmp_path)
    wait_until(lambda: log_has(run_dir, "Train Epoch: 0 [") or first.poll() is not None, "training to start", poll=0.1)
    first.kill()
    first.communicate()
    assert_no_process_left(name)
    assert epoch_checkpoints(run_dir) == [], "killed before the first checkpoint"
    again = run_bmclip(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p.name for p in epoch_checkpoints(run_dir)] == ["epoch_1.pt", "epoch_2.pt"]
