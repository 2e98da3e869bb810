"""`bmclip runs [LOGS_DIR]`: one row per run, with where it stands, to find what to resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from run_folders import DIVERGED_LOG, assert_refused, make_run_folder, set_launcher_pid, truncate

from biomedclip_cli.runs.folder import LOG_FILE, record_exit

PROGRESS = ("2026-11-28,22:39:59 | INFO | Train Epoch: {epoch} [480/480 (100%)] Data (t): 0.033 Batch (t): 0.214, 77.2650/s, "
            "38.6325/s/gpu LR: 0.000785 Logit Scale: 14.164 Contrastive_loss: {loss} ({loss}) Loss: {loss} ({loss})\n")


def runs_json(invoke, *args: str) -> dict[str, dict]:
    result = invoke("runs", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return {run["name"]: run for run in json.loads(result.stdout)}


def test_runs_shows_finished_failed_and_running_runs(invoke, demo_data):
    finished = make_run_folder(demo_data.train_csv, name="finished", epochs=2, checkpoints=(1, 2))
    (finished / LOG_FILE).write_text(PROGRESS.format(epoch=1, loss=1.25))
    record_exit(finished, 0)
    stopped = make_run_folder(demo_data.train_csv, name="stopped", epochs=3, checkpoints=(1, 2))
    truncate(stopped / "checkpoints" / "epoch_2.pt")
    record_exit(stopped, 143)
    make_run_folder(demo_data.train_csv, name="killed", epochs=3, checkpoints=(1,))
    running = make_run_folder(demo_data.train_csv, name="running", epochs=3, checkpoints=())
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "bmclip"])
    try:
        set_launcher_pid(running, launcher.pid)
        runs = runs_json(invoke, "logs")
    finally:
        launcher.kill()
        launcher.wait()
    assert sorted(runs) == ["finished", "killed", "running", "stopped"]
    assert runs["finished"]["status"] == "finished" and runs["finished"]["epochs_done"] == 2 and runs["finished"]["last_loss"] == 1.25
    assert (runs["stopped"]["status"], runs["stopped"]["detail"], runs["stopped"]["epochs_done"]) == ("failed", "exit status 143", 1)
    assert runs["stopped"]["last_checkpoint"].endswith("epoch_1.pt"), "the truncated epoch_2.pt is not a checkpoint"
    assert (runs["killed"]["status"], runs["killed"]["detail"]) == ("failed", "killed")
    assert (runs["running"]["status"], runs["running"]["detail"]) == ("running", f"process {launcher.pid}")
    assert runs["running"]["model"] == "bmclip-tiny" and runs["running"]["epochs_total"] == 3


def test_runs_reads_open_clips_params_for_runs_bmclip_did_not_launch(invoke):
    run_dir = Path("logs/pasted")
    run_dir.mkdir(parents=True)
    (run_dir / "params.txt").write_text("batch_size: 8\nepochs: 7\nmodel: ViT-B-32\n")
    (run_dir / LOG_FILE).write_text(PROGRESS.format(epoch=0, loss=2.5))
    os.utime(run_dir / LOG_FILE, (0, 0))
    run = runs_json(invoke)["pasted"]
    assert (run["model"], run["epochs_done"], run["epochs_total"], run["status"], run["detail"]) == (
        "ViT-B-32", 0, 7, "failed", "log quiet")


def test_a_diverged_run_shows_its_nan_loss(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, name="diverged", epochs=2, checkpoints=(1, 2))
    (run_dir / LOG_FILE).write_text(DIVERGED_LOG.read_text())
    assert runs_json(invoke)["diverged"]["last_loss"] is None
    result = invoke("runs")
    row = next(line for line in result.stdout.splitlines() if "diverged" in line)
    assert row.split("│")[-2].strip() == "nan", row


def test_runs_prints_a_table(invoke, demo_data):
    make_run_folder(demo_data.train_csv, name="finished", epochs=2, checkpoints=(1, 2))
    result = invoke("runs")
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "finished" in line and "bmclip-tiny" in line)
    assert "2/2" in row and "epoch_2.pt" in row


def test_runs_of_an_empty_folder_and_of_no_folder(invoke):
    Path("logs").mkdir()
    assert invoke("runs").stdout.strip() == "no runs in logs"
    assert_refused(invoke("runs", "elsewhere"), "elsewhere: is not a folder")
