"""Real training: the tiny model, 2 ranks through torch.distributed.run (gloo on CPU), CSV and shards."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import run_bmclip

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.runs.bad_samples import BAD_SAMPLES_FILE
from biomedclip_cli.runs.folder import epoch_checkpoints, train_progress

pytestmark = pytest.mark.slow

TINY_RUN = ("--model", "bmclip-tiny", "--nproc-per-node", "2", "--batch-size", "16", "--epochs", "3", "--lr", "1e-3",
            "--warmup", "2", "--workers", "0")


def assert_trained(run_dir: Path, epochs: int) -> None:
    """Checkpoints for every epoch exist, the logged loss fell from the first step to the last, and no sample was skipped
    (the demo's DICOM, 16-bit TIFF and PNG scans were all read)."""
    assert [p.name for p in epoch_checkpoints(run_dir)] == [f"epoch_{k}.pt" for k in range(1, epochs + 1)]
    assert not (run_dir / BAD_SAMPLES_FILE).exists(), (run_dir / BAD_SAMPLES_FILE).read_text()
    progress = train_progress(run_dir)
    assert progress[-1].epoch == epochs - 1
    assert progress[-1].loss < progress[0].loss * 0.9, [p.loss for p in progress]


def test_train_on_csv_with_two_ranks(demo_data, tmp_path: Path):
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), *TINY_RUN, "--logs", str(tmp_path), "--name", "csv")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "csv"
    assert_trained(run_dir, epochs=3)
    assert "world_size: 2" in (run_dir / "params.txt").read_text()
    saved = TrainConfig.model_validate(yaml.safe_load((run_dir / "bmclip.yaml").read_text()))
    assert (saved.dataset_type.value, saved.csv_separator, saved.nproc_per_node) == ("csv", ",", 2)
    assert "training finished" in result.stdout and "epoch_3.pt" in result.stdout


def test_train_on_biomedica_layout_shards_with_two_ranks(demo_data, tmp_path: Path):
    result = run_bmclip("train", "--train-data", demo_data.shards, *TINY_RUN, "--logs", str(tmp_path), "--name", "shards")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_trained(tmp_path / "shards", epochs=3)
    params = (tmp_path / "shards" / "params.txt").read_text()
    assert "dataset_resampled: True" in params and f"train_num_samples: {demo_data.train_samples}" in params


def test_a_diverged_run_ends_with_a_nan_loss_in_its_summary(demo_data, tmp_path: Path):
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--nproc-per-node", "1",
                        "--batch-size", "40", "--epochs", "1", "--lr", "1e12", "--warmup", "0", "--workers", "0", "--precision", "fp32",
                        "--logs", str(tmp_path), "--name", "diverged", "--", "--log-every-n-steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    final_loss = next(line for line in result.stdout.splitlines() if "final loss" in line)
    assert final_loss.split()[2] == "nan", final_loss
    losses = [p.loss for p in train_progress(tmp_path / "diverged")]
    assert len(losses) == 5 and math.isfinite(losses[0]) and math.isnan(losses[-1]), losses


def test_dry_run_line_pasted_into_a_shell_trains_the_same(demo_data, tmp_path: Path):
    dry = run_bmclip("train", "--train-data", str(demo_data.train_csv), *TINY_RUN, "--epochs", "1",
                     "--logs", str(tmp_path), "--name", "pasted", "--dry-run")
    assert dry.returncode == 0 and len(dry.stdout.splitlines()) == 1
    shell = subprocess.run(["bash", "-c", dry.stdout], capture_output=True, text=True, timeout=300, check=False)
    assert shell.returncode == 0, shell.stderr[-3000:]
    assert [p.name for p in epoch_checkpoints(tmp_path / "pasted")] == ["epoch_1.pt"]


def test_on_a_pipe_the_console_is_rank_0s_progress_and_every_rank_keeps_its_output(demo_data, tmp_path: Path):
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), *TINY_RUN, "--epochs", "2", "--logs", str(tmp_path),
                        "--name", "quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    console = (result.stderr + result.stdout).splitlines()
    assert len(console) <= 30, console
    assert [line.split("  ")[0] for line in console if line.startswith("bmclip: epoch")] == ["bmclip: epoch 1/2", "bmclip: epoch 2/2"]
    assert not [line for line in console if "Params:" in line or "Warning" in line or "INFO" in line], console
    rank_logs = tmp_path / "quiet" / "ranks"
    assert "Params:" in (rank_logs / "rank-0.log").read_text() and "Running in distributed mode" in (rank_logs / "rank-1.log").read_text()


def test_verbose_shows_open_clips_own_log_lines(demo_data, tmp_path: Path):
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), *TINY_RUN, "--epochs", "1", "--verbose",
                        "--logs", str(tmp_path), "--name", "verbose")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| INFO | Start epoch 0" in result.stderr and "Train Epoch: 0" in result.stderr
