"""Files written under a temporary name, synced and renamed into place when complete, so a finished-looking file is a complete one.

The one way bmclip publishes a file others read (a run's state, checkpoints, shards): the data reaches the disk (fsync) before
the rename does, and the rename itself is synced with its folder, so neither a kill nor a power cut leaves a half-written file
under the final name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is complete (renamed over `path` at the end; open_clip's globs never see it)."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def sync_file(path: Path) -> None:
    """Flush a file's contents to disk, so a rename never publishes unwritten data."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; some network file systems cannot, which is then left to them."""
    with contextlib.suppress(OSError):
        sync_file(folder)


def publish(partial: Path, target: Path) -> None:
    """Sync a completely written `partial` file and rename it over `target`."""
    sync_file(partial)
    os.replace(partial, target)
    sync_folder(target.parent)


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` as a whole: under its partial name, synced, then renamed into place."""
    partial = partial_path(path)
    try:
        if isinstance(content, str):
            partial.write_text(content, encoding="utf-8")
        else:
            partial.write_bytes(content)
        publish(partial, path)
    except OSError:  # a full disk: no half-written partial is left behind
        partial.unlink(missing_ok=True)
        raise
