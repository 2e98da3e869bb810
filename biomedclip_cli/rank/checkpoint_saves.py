"""Checkpoints a kill cannot spoil, and resumes from one bmclip has verified: replacements for torch.save and open_clip's resume lookup.

rank/patches.py puts them in place.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from biomedclip_cli.partial_files import partial_path, publish
from biomedclip_cli.rank.protocol import OPEN_CLIP_RESUME_LATEST
from biomedclip_cli.runs.checkpoints import newest_complete_checkpoint, prune_checkpoints
from biomedclip_cli.runs.folder import EPOCH_CHECKPOINT, LOG_FILE


def atomic_checkpoint_save(save: Callable[..., None], keep: int | None, entries: dict[str, Any] | None = None) -> Callable[..., None]:
    """torch.save (`save`) that writes epoch_K.pt files under a temporary name, syncs and renames them into place.

    A kill at any moment leaves each epoch_K.pt complete or absent (a leftover `.partial` file is
    ignored by open_clip and bmclip). With `keep`, older epoch checkpoints are deleted after a
    newer one is verified complete. `entries` are added to each epoch checkpoint's dict (a LoRA
    run's settings). Every other torch.save call is passed through unchanged.
    """

    def atomic_save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(f, (str, os.PathLike)) or not EPOCH_CHECKPOINT.match(Path(f).name):
            return save(obj, f, *args, **kwargs)
        if isinstance(obj, dict):
            obj = {**obj, **(entries or {})}
        target = Path(f)
        partial = partial_path(target)
        save(obj, partial, *args, **kwargs)
        publish(partial, target)
        if keep:
            for removed in prune_checkpoints(target.parent.parent, keep):
                logging.info(f"bmclip: deleted {removed} (keeping the newest {keep} checkpoints)")
        return None

    return atomic_save


class ResumeLookup:
    """Answers open_clip's `--resume latest` lookup with a checkpoint bmclip has verified.

    open_clip takes the file whose name sorts last without checking it, and refuses an explicit
    `--resume FILE` when the run folder already has its log ("Experiment already exists"). So
    `--resume latest` gets the newest checkpoint that loads, and an explicit file for a run folder
    with a log goes through open_clip's `latest` path (which appends to the log) answered with that file.
    """

    def __init__(self, parse_args: Callable[[list[str]], argparse.Namespace],
                 get_latest_checkpoint: Callable[[str, bool], str | None]) -> None:
        self.open_clip_parse_args, self.open_clip_latest = parse_args, get_latest_checkpoint
        self.chosen: str | None = None

    def parse_args(self, argv: list[str]) -> argparse.Namespace:
        """open_clip's parse_args, with an explicit resume into an existing run folder turned into `latest`."""
        args = self.open_clip_parse_args(argv)
        if args.resume not in (None, OPEN_CLIP_RESUME_LATEST) and args.name and _has_log(Path(args.logs) / args.name):
            self.chosen, args.resume = args.resume, OPEN_CLIP_RESUME_LATEST
        return args

    def latest_checkpoint(self, path: str, remote: bool) -> str | None:
        """The checkpoint open_clip resumes from under `latest` (path is <logs>/<name>/checkpoints)."""
        if self.chosen is not None:
            return self.chosen
        if remote:
            return self.open_clip_latest(path, remote)
        point = newest_complete_checkpoint(Path(path).parent)
        for skipped in point.skipped:
            logging.warning(f"bmclip: {skipped.line()}")
        return str(point.checkpoint) if point.checkpoint else None


def _has_log(run_dir: Path) -> bool:
    return (run_dir / LOG_FILE).exists() or any(run_dir.glob("out-*"))
