"""What a run folder <logs>/<name>/ holds: bmclip.yaml, open_clip's out.log, and checkpoints/epoch_K.pt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.config import TrainConfig, config_to_yaml

CONFIG_FILE = "bmclip.yaml"
LOG_FILE = "out.log"
CHECKPOINT_DIR = "checkpoints"
EPOCH_CHECKPOINT = re.compile(r"^epoch_(\d+)\.pt$")
TRAIN_LINE = re.compile(
    r"Train Epoch: (?P<epoch>\d+) \[\s*(?P<seen>\d+)/(?P<total>\d+) \((?P<percent>\d+)%\)\].*?"
    r"(?P<rate>[\d.]+)/s, .*?LR: (?P<lr>[\d.e+-]+).*?Loss: (?P<loss>[\d.e+-]+) \((?P<loss_avg>[\d.e+-]+)\)"
)


def write_run_config(config: TrainConfig) -> Path:
    """Save the resolved config (no secrets: it holds none) as <run>/bmclip.yaml and return its path."""
    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    path.write_text(config_to_yaml(config), encoding="utf-8")
    return path


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
    """One 'Train Epoch' line of open_clip's log: where training was and how it went."""

    epoch: int
    samples_seen: int
    samples_per_epoch: int
    samples_per_second: float
    lr: float
    loss: float


def train_progress(run_dir: Path) -> list[TrainProgress]:
    """Every progress line open_clip wrote to <run>/out.log so far (empty when there is no log yet)."""
    log = run_dir / LOG_FILE
    if not log.is_file():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [
        TrainProgress(int(m["epoch"]), int(m["seen"]), int(m["total"]), float(m["rate"]), float(m["lr"]), float(m["loss"]))
        for line in lines
        if (m := TRAIN_LINE.search(line))
    ]
