"""Which checkpoints of a run folder are complete, which one to resume from, and which old ones to delete.

A checkpoint is complete when torch loads it on the CPU (as open_clip_train will) and it holds an
epoch and a state_dict. Files cut short by a kill during `torch.save`, from runs older than bmclip's
atomic saves, are skipped with a warning naming them. torch is imported only when a file is loaded.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from biomedclip_cli.partial_files import PARTIAL_SUFFIX
from biomedclip_cli.problems import Problem, warning
from biomedclip_cli.runs.folder import CHECKPOINT_DIR, epoch_checkpoints


def incompleteness(path: Path, mmap: bool = False) -> str | None:
    """Why a checkpoint file cannot be resumed from, or None when it loads and holds an epoch and weights.

    With `mmap` the tensors are mapped, not read: the file's structure and contents list are checked
    in milliseconds however large it is, but a tensor's bytes are not read, so damage inside one goes unseen.
    """
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for truncated or corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"it does not load, so it is truncated or corrupt ({reason[:120]})"
    if not isinstance(content, dict) or "epoch" not in content or "state_dict" not in content:
        return "it is not an open_clip training checkpoint (no epoch and state_dict)"
    return None


def looks_complete(path: Path) -> bool:
    """A cheap check without torch: the file's zip directory (written last by torch.save) is readable."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (OSError, zipfile.BadZipFile):
        return False


@dataclass
class ResumePoint:
    """The newest complete checkpoint of a run folder (None when there is none) and the files skipped for it."""

    checkpoint: Path | None
    skipped: list[Problem] = field(default_factory=list)

def newest_complete_checkpoint(run_dir: Path) -> ResumePoint:
    """Load the run's epoch_K.pt files newest first until one is complete; warn about each one skipped."""
    skipped: list[Problem] = []
    for checkpoint in reversed(epoch_checkpoints(run_dir)):
        reason = incompleteness(checkpoint)
        if reason is None:
            return ResumePoint(checkpoint, skipped)
        skipped.append(warning(str(checkpoint), f"skipped: {reason}", "resuming from an older checkpoint"))
    return ResumePoint(None, skipped)


def prune_checkpoints(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` epoch checkpoints, and leftovers of interrupted saves; return what went.

    Nothing is deleted unless the newest checkpoint is complete, so a bad save never costs a good file.
    Called after each save, whose atomic rename already makes the file whole, so the newest is checked
    without reading its tensors (incompleteness with mmap) rather than loaded in full.
    """
    checkpoints = epoch_checkpoints(run_dir)
    if not checkpoints or incompleteness(checkpoints[-1], mmap=True) is not None:
        return []
    doomed = checkpoints[:-keep] + sorted((run_dir / CHECKPOINT_DIR).glob(f"*{PARTIAL_SUFFIX}"))
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
