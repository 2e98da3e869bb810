"""Where each run under a logs folder stands: epochs done, last checkpoint, running/finished/failed, last loss.

Cheap enough for a folder of many runs: checkpoints are checked by their zip directory (no torch),
and the configuration comes from bmclip.yaml, or open_clip's params.txt for runs bmclip did not launch.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.runs.folder import CONFIG_FILE, LOG_FILE, PARAMS_FILE
from biomedclip_cli.runs.run_folder import RunFolder, RunSnapshot

RUNNING, FINISHED, FAILED = "running", "finished", "failed"
QUIET_LOG_SECONDS = 15 * 60
RUN_FILES = (CONFIG_FILE, LOG_FILE, PARAMS_FILE)
FAILURES_IN_WORDS = {  # the exception a failed launch's cause starts with -> what `bmclip runs` says
    "DiskFull": "disk full",
    "TooManyBadSamples": "too many bad samples",
    "NothingKept": "the filter kept nothing",
    "HangTimeout": "hung",
}


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
    state = RunFolder(run_dir).snapshot()
    status, detail = _status(state)
    return RunStatus(run_dir.name, run_dir, state.model, state.epochs_done, state.planned_epochs, state.last_checkpoint, status, detail,
                     state.progress[-1].loss if state.progress else None)


def _status(state: RunSnapshot) -> tuple[str, str]:
    """running, finished or failed, with a detail (exit status, process, or how it was judged)."""
    total, run_dir = state.planned_epochs, state.folder
    if total is not None and state.epochs_done >= total:
        return FINISHED, ""
    record = state.launch
    if record is not None and record.exit_status is not None:
        kind = (record.cause or "").split(":", 1)[0]
        return FAILED, FAILURES_IN_WORDS.get(kind, f"exit status {record.exit_status}")
    if record is not None and record.host == socket.gethostname():
        return (RUNNING, f"process {record.pid}") if record.alive_here() else (FAILED, "killed")
    log = run_dir / LOG_FILE
    if log.exists() and time.time() - log.stat().st_mtime < QUIET_LOG_SECONDS:
        return RUNNING, f"on {record.host}" if record else "log active"
    return FAILED, f"on {record.host}, log quiet" if record else "log quiet"
