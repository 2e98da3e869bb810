"""The --val-zeroshot results of a run: one JSON line per evaluated epoch, and which epoch's checkpoint is kept as the best.

Rank 0 writes them during training (rank/epoch_hooks.py); the summary, `bmclip report` and a
resumed run read them, so a resume goes on comparing against the best epoch of the first attempt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from biomedclip_cli.partial_files import write_atomically
from biomedclip_cli.runs.folder import CHECKPOINT_DIR

ZERO_SHOT_FILE = "zeroshot.jsonl"
BEST_FILE = "best.json"
BEST_CHECKPOINT = f"{CHECKPOINT_DIR}/best.pt"
METRIC_FIELDS = {"zeroshot-top1": "top1", "zeroshot-balanced-accuracy": "balanced_accuracy"}


@dataclass(frozen=True)
class ZeroShotRecord:
    """The zero-shot scores after one epoch."""

    epoch: int
    top1: float
    balanced_accuracy: float
    top5: float | None
    images: int
    classes: int

    def metric(self, name: str) -> float:
        """The value of a --keep-best metric (zeroshot-top1, zeroshot-balanced-accuracy)."""
        return float(getattr(self, METRIC_FIELDS[name]))


@dataclass(frozen=True)
class BestCheckpoint:
    """The checkpoint --keep-best kept: its epoch and score."""

    metric: str
    value: float
    epoch: int
    checkpoint: str


def append_record(run_dir: Path, record: ZeroShotRecord) -> None:
    """Add one epoch's scores to the run's zeroshot.jsonl."""
    with (run_dir / ZERO_SHOT_FILE).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(record)) + "\n")


def read_records(run_dir: Path) -> list[ZeroShotRecord]:
    """The run's zero-shot scores by epoch (the last line of an epoch wins: a resumed run evaluates it again);
    unreadable lines are skipped."""
    path = run_dir / ZERO_SHOT_FILE
    if not path.is_file():
        return []
    by_epoch: dict[int, ZeroShotRecord] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = ZeroShotRecord(**json.loads(line))
        except (ValueError, TypeError):
            continue
        by_epoch[record.epoch] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def write_best(run_dir: Path, best: BestCheckpoint) -> None:
    """Record which checkpoint is the best (written after the checkpoint itself is in place)."""
    write_atomically(run_dir / BEST_FILE, json.dumps(asdict(best)))


def read_best(run_dir: Path) -> BestCheckpoint | None:
    """The best checkpoint recorded for the run, or None (no --keep-best, nothing evaluated yet, or its file is gone)."""
    path = run_dir / BEST_FILE
    try:
        best = BestCheckpoint(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return best if (run_dir / best.checkpoint).is_file() else None
