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

import torch

from biomedclip_cli.console import TO_CONSOLE
from biomedclip_cli.disk_space import free_bytes, human_size, is_full_disk
from biomedclip_cli.partial_files import partial_path, publish
from biomedclip_cli.rank.protocol import OPEN_CLIP_RESUME_LATEST
from biomedclip_cli.runs.checkpoints import looks_complete, newest_complete_checkpoint, prune_checkpoints
from biomedclip_cli.runs.folder import EPOCH_CHECKPOINT, LOG_FILE, epoch_checkpoints


class DiskFull(RuntimeError):
    """An epoch checkpoint did not fit on its disk; the message says where, how much, what is intact and what to run."""


def atomic_checkpoint_save(save: Callable[..., None], keep: int | None, entries: dict[str, Any] | None = None) -> Callable[..., None]:
    """torch.save (`save`) that writes epoch_K.pt files under a temporary name, syncs and renames them into place.

    A kill at any moment leaves each epoch_K.pt complete or absent (a leftover `.partial` file is
    ignored by open_clip and bmclip). With `keep`, older epoch checkpoints are deleted after a
    newer one is verified complete. `entries` are added to each epoch checkpoint's dict (a LoRA
    run's settings). A save that fails because the disk cannot hold the checkpoint removes its
    unfinished file and raises DiskFull; once a disk has less room than the last checkpoint took,
    the console says so (once), while there is still an epoch to free some. Every other torch.save
    call is passed through unchanged.
    """
    warned: list[Path] = []

    def atomic_save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(f, (str, os.PathLike)) or not EPOCH_CHECKPOINT.match(Path(f).name):
            return save(obj, f, *args, **kwargs)
        if isinstance(obj, dict):
            obj = {**obj, **(entries or {})}
        target = Path(f)
        partial = partial_path(target)
        try:
            save(obj, partial, *args, **kwargs)
            publish(partial, target)
        except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as a RuntimeError ("unexpected pos")
            written = partial.stat().st_size if partial.exists() else 0
            available = free_bytes(target.parent) + written  # once the unfinished file is gone (its writer may still hold it open)
            partial.unlink(missing_ok=True)
            needed = state_bytes(obj)
            if is_full_disk(exc) or available < needed:
                raise DiskFull(disk_full_message(target, needed, available)) from exc
            raise
        if keep:
            for removed in prune_checkpoints(target.parent.parent, keep):
                logging.info(f"bmclip: deleted {removed} (keeping the newest {keep} checkpoints)")
        size, free = target.stat().st_size, free_bytes(target.parent)
        if free < size and not warned:
            warned.append(target)
            logging.warning(f"bmclip: warning: {target.parent} has {human_size(free)} free, less than the {human_size(size)} another "
                            "checkpoint takes: free space there before the next one is saved, or the run stops then (the checkpoints "
                            "saved stay intact)", extra={TO_CONSOLE: True})
        return None

    return atomic_save


def state_bytes(obj: object) -> int:
    """About the bytes torch.save writes for `obj`: the storages of the tensors in it (each counted once)."""
    storages: dict[int, int] = {}

    def visit(value: object) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(obj)
    return sum(storages.values())


def disk_full_message(target: Path, needed: int, available: int) -> str:
    """What a save that did not fit says: the folder, its free space, the space needed, the checkpoint intact, what to do."""
    intact = [path for path in epoch_checkpoints(target.parent.parent) if looks_complete(path)]
    kept = f"{intact[-1].name} is intact" if intact else "no epoch checkpoint was saved before it"
    return (f"the disk is full: {target.name} needs about {human_size(needed)} in {target.parent}, which has {human_size(available)} "
            f"free; {kept} (the unfinished file was removed); free space on that disk (older epoch_K.pt files you no longer need) "
            "before resuming")


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
