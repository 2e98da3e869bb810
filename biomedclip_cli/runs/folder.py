"""What a run folder <logs>/<name>/ holds: bmclip.yaml, launch.json, open_clip's out.log and params.txt, checkpoints/epoch_K.pt and results.jsonl, tensorboard/, report/."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from biomedclip_cli.config import RESUME_AUTO, TrainConfig, build_config, config_to_yaml, load_config_file
from biomedclip_cli.problems import ProblemFound, error

CONFIG_FILE = "bmclip.yaml"
LAUNCH_FILE = "launch.json"
LOG_FILE = "out.log"
PARAMS_FILE = "params.txt"
LAUNCHER_MARKERS = (b"bmclip", b"biomedclip_cli")  # in the command line of a process that launched a run
CHECKPOINT_DIR = "checkpoints"
RESULTS_FILE = f"{CHECKPOINT_DIR}/results.jsonl"
TENSORBOARD_DIR = "tensorboard"
REPORT_DIR = "report"
EPOCH_CHECKPOINT = re.compile(r"^epoch_(\d+)\.pt$")
LOGGED_NUMBER = r"(?:[\d.e+-]+|-?nan|-?inf)"  # Python's float formatting: a diverged run logs nan or inf
TRAIN_LINE = re.compile(
    r"Train Epoch: (?P<epoch>\d+) \[\s*(?P<seen>\d+)/(?P<total>\d+) \((?P<percent>\d+)%\)\] "
    r"Data \(t\): (?P<data_time>[\d.]+) Batch \(t\): (?P<batch_time>[\d.]+), "
    rf"(?P<rate>[\d.]+)/s, .*?LR: (?P<lr>{LOGGED_NUMBER}).*?Loss: (?P<loss>{LOGGED_NUMBER}) \((?P<loss_avg>{LOGGED_NUMBER})\)"
)
LOGIT_SCALE = re.compile(rf"Logit Scale: (?P<scale>{LOGGED_NUMBER})")


def write_run_config(config: TrainConfig) -> Path:
    """Save the resolved config (no secrets: it holds none) as <run>/bmclip.yaml and return its path.

    A resume from one of the run's own checkpoints is saved as `resume: auto`, so that training
    with the saved config again continues from the newest checkpoint then, not from this one.
    """
    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    saved = config.model_copy(update={"resume": RESUME_AUTO}) if resumes_own_checkpoint(config) else config
    path.write_text(config_to_yaml(saved), encoding="utf-8")
    return path


def resumes_own_checkpoint(config: TrainConfig) -> bool:
    """True when the config resumes from an epoch_K.pt in its own run folder."""
    if config.resume is None or not EPOCH_CHECKPOINT.match(Path(config.resume).name):
        return False
    return Path(config.resume).resolve().parent == (config.run_dir() / CHECKPOINT_DIR).resolve()


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config a run was launched with, from <run>/bmclip.yaml (ProblemFound when missing or unreadable)."""
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise ProblemFound(error(str(run_dir), "is not a folder", "pass a run folder <logs>/<name> (bmclip runs lists them)"))
    if not path.is_file():
        raise ProblemFound(error(str(run_dir), f"has no {CONFIG_FILE}, so it was not started by bmclip train",
                                 "continue it with bmclip train --resume CHECKPOINT and the original options"))
    return build_config(load_config_file(path), {}, [], path)


@dataclass(frozen=True)
class LaunchRecord:
    """Where and by which process a run was last launched, and how that launch ended (None while it runs)."""

    cwd: str
    host: str
    pid: int
    started: str
    exit_status: int | None = None

    def alive_here(self) -> bool:
        """True when the launching bmclip process still runs on this machine."""
        if self.exit_status is not None or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        return not cmdline.exists() or any(marker in cmdline.read_bytes() for marker in LAUNCHER_MARKERS)


def write_launch_record(run_dir: Path, cwd: Path) -> None:
    """Note in <run>/launch.json that this process launches the run from `cwd` (relative paths are resolved there)."""
    record = LaunchRecord(str(cwd), socket.gethostname(), os.getpid(), datetime.now().isoformat(timespec="seconds"))
    (run_dir / LAUNCH_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")


def record_exit(run_dir: Path, status: int) -> None:
    """Add the launch's exit status to <run>/launch.json."""
    record = read_launch_record(run_dir)
    if record is not None:
        ended = LaunchRecord(record.cwd, record.host, record.pid, record.started, status)
        (run_dir / LAUNCH_FILE).write_text(json.dumps(asdict(ended), indent=2) + "\n", encoding="utf-8")


def read_launch_record(run_dir: Path) -> LaunchRecord | None:
    """The run's launch record, or None when it has none (e.g. started by a pasted --dry-run line) or it is unreadable."""
    try:
        return LaunchRecord(**json.loads((run_dir / LAUNCH_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """The run's epoch_K.pt files, oldest epoch first."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if EPOCH_CHECKPOINT.match(p.name)), key=checkpoint_epoch)


def checkpoint_epoch(checkpoint: Path) -> int:
    """The epoch number K of an epoch_K.pt file."""
    match = EPOCH_CHECKPOINT.match(checkpoint.name)
    if match is None:
        raise ValueError(f"not an epoch checkpoint: {checkpoint}")
    return int(match.group(1))


@dataclass(frozen=True)
class TrainProgress:
    """One 'Train Epoch' line of open_clip's log: where training was and how it went.

    `data_seconds` and `batch_seconds` are open_clip's per-step averages since the previous line
    (time waiting for the data loader, and the whole step including that wait).
    """

    epoch: int
    samples_seen: int
    samples_per_epoch: int
    samples_per_second: float
    lr: float
    loss: float
    data_seconds: float
    batch_seconds: float
    logit_scale: float | None = None


def train_progress(run_dir: Path) -> list[TrainProgress]:
    """Every progress line open_clip wrote to <run>/out.log so far (empty when there is no log yet)."""
    log = run_dir / LOG_FILE
    if not log.is_file():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [
        TrainProgress(int(m["epoch"]), int(m["seen"]), int(m["total"]), float(m["rate"]), float(m["lr"]), float(m["loss"]),
                      float(m["data_time"]), float(m["batch_time"]),
                      float(scale["scale"]) if (scale := LOGIT_SCALE.search(line)) else None)
        for line in lines
        if (m := TRAIN_LINE.search(line))
    ]


def read_params(run_dir: Path) -> dict[str, str]:
    """open_clip's <run>/params.txt ('name: value' per line) as a dict; empty when missing."""
    path = run_dir / PARAMS_FILE
    if not path.is_file():
        return {}
    pairs = (line.split(": ", 1) for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if ": " in line)
    return {key.strip(): value.strip() for key, value in pairs}
