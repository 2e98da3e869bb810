"""Run folders as `bmclip train` leaves them (bmclip.yaml, launch.json, checkpoints), built without training; bmclip's refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import torch

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.runs.folder import CHECKPOINT_DIR, LAUNCH_FILE, LOG_FILE, publish_run_state, run_config_text, this_launch

# The progress lines of a real bmclip-tiny run trained at --lr 1e12: the loss is nan from its second step on.
DIVERGED_LOG = Path(__file__).parent / "fixtures" / "diverged_run" / LOG_FILE
RESOLVED = {"model": "bmclip-tiny", "dataset_type": "csv", "csv_separator": ",", "nproc_per_node": 1, "precision": "fp32", "lr": 1e-3,
            "batch_size": 8, "workers": 0}


def save_checkpoint(run_dir: Path, epoch: int) -> Path:
    """A small checkpoint with what open_clip_train saves: epoch, name, state_dict, optimizer."""
    path = run_dir / CHECKPOINT_DIR / f"epoch_{epoch}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "name": run_dir.name, "state_dict": {"w": torch.full((64,), float(epoch))}, "optimizer": {}}, path)
    return path


def truncate(path: Path) -> None:
    """Cut a file to a third of its size, as a kill during a non-atomic torch.save leaves it."""
    size = path.stat().st_size
    with path.open("r+b") as stream:
        stream.truncate(size // 3)


def make_run_folder(train_csv: Path, *, name: str = "run", epochs: int = 3, checkpoints: tuple[int, ...] = (1, 2),
                    **values: object) -> Path:
    """A run folder under ./logs launched from the current folder, with train.csv copied here (a relative --train-data)."""
    shutil.copy(train_csv, "train.csv")
    config = TrainConfig.model_validate({**RESOLVED, "train_data": "train.csv", "logs": "logs", "name": name, "epochs": epochs, **values})
    run_dir = config.run_dir()
    publish_run_state(run_dir, run_config_text(config), this_launch(Path.cwd()))
    set_launcher_pid(run_dir, ended_process_pid())
    (run_dir / LOG_FILE).write_text("", encoding="utf-8")
    for epoch in checkpoints:
        save_checkpoint(run_dir, epoch)
    return run_dir.resolve()


def ended_process_pid() -> int:
    """The id of a process that has just ended (a launcher that was killed)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def set_launcher_pid(run_dir: Path, pid: int) -> None:
    """Make launch.json name `pid` as the bmclip process that launched the run."""
    record = json.loads((run_dir / LAUNCH_FILE).read_text())
    (run_dir / LAUNCH_FILE).write_text(json.dumps({**record, "pid": pid}))


def processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains `text` (a run's unique folder name finds all its processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def assert_refused(result, expected: str) -> None:
    """Exit 2 with one error line containing `expected`, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
