"""Where each run under a logs folder stands: epochs done, last checkpoint, running/finished/failed, last loss.

Cheap enough for a folder of many runs: checkpoints are checked by their zip directory (no torch),
and the configuration comes from bmclip.yaml, or open_clip's params.txt for runs bmclip did not launch.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.problems import ProblemFound
from biomedclip_cli.runs.checkpoints import looks_complete
from biomedclip_cli.runs.folder import (
    CONFIG_FILE,
    LOG_FILE,
    PARAMS_FILE,
    checkpoint_epoch,
    epoch_checkpoints,
    read_launch_record,
    read_params,
    read_run_config,
    train_progress,
)

RUNNING, FINISHED, FAILED = "running", "finished", "failed"
QUIET_LOG_SECONDS = 15 * 60
RUN_FILES = (CONFIG_FILE, LOG_FILE, PARAMS_FILE)


@dataclass(frozen=True)
class RunStatus:
    """One run folder at a glance."""

    name: str
    folder: Path
    model: str
    epochs_done: int
    epochs_total: int | None
    last_checkpoint: Path | None
    status: str
    detail: str
    last_loss: float | None


def list_runs(logs_dir: Path) -> list[RunStatus]:
    """Every run folder directly under `logs_dir`, by name."""
    folders = sorted(d for d in logs_dir.iterdir() if d.is_dir() and any((d / f).exists() for f in RUN_FILES))
    return [run_status(folder) for folder in folders]


def run_status(run_dir: Path) -> RunStatus:
    """Where one run stands (see the module docstring for where each value comes from)."""
    model, epochs_total = _model_and_epochs(run_dir)
    complete = [c for c in epoch_checkpoints(run_dir) if looks_complete(c)]
    last = complete[-1] if complete else None
    done = checkpoint_epoch(last) if last else 0
    progress = train_progress(run_dir)
    status, detail = _status(run_dir, done, epochs_total)
    return RunStatus(run_dir.name, run_dir, model, done, epochs_total, last, status, detail, progress[-1].loss if progress else None)


def _model_and_epochs(run_dir: Path) -> tuple[str, int | None]:
    try:
        config = read_run_config(run_dir)
        return config.model, config.planned_epochs()
    except ProblemFound:
        params = read_params(run_dir)
        epochs = params.get("epochs", "")
        return params.get("model", "?"), int(epochs) if epochs.isdigit() else None


def _status(run_dir: Path, done: int, total: int | None) -> tuple[str, str]:
    """running, finished or failed, with a detail (exit status, process, or how it was judged)."""
    if total is not None and done >= total:
        return FINISHED, ""
    record = read_launch_record(run_dir)
    if record is not None and record.exit_status is not None:
        return FAILED, f"exit status {record.exit_status}"
    if record is not None and record.host == socket.gethostname():
        return (RUNNING, f"process {record.pid}") if record.alive_here() else (FAILED, "killed")
    log = run_dir / LOG_FILE
    if log.exists() and time.time() - log.stat().st_mtime < QUIET_LOG_SECONDS:
        return RUNNING, f"on {record.host}" if record else "log active"
    return FAILED, f"on {record.host}, log quiet" if record else "log quiet"
