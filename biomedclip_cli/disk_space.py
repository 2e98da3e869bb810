"""Free disk space, said in words: how much a folder's disk has, in units a person reads, and whether an error was a full disk.

Used where bmclip writes big files (checkpoints in every rank, the run folder before a launch) and by env-check.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # no space left; disk quota exceeded (a cluster's per-user quota)
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def existing_folder(path: Path) -> Path:
    """The folder itself, or its nearest ancestor that exists (the disk a folder not made yet will be on)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes free for this user on the disk that holds (or will hold) `path`."""
    return shutil.disk_usage(existing_folder(path)).free


def human_size(size: float) -> str:
    """A byte count as a person reads it: '0 B', '812 KiB', '18.2 MiB', '1.4 GiB'."""
    unit = 0
    while size >= 1024 and unit < len(UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{size:.0f} {UNITS[unit]}" if unit == 0 or size >= 100 else f"{size:.1f} {UNITS[unit]}"


def is_full_disk(exc: BaseException) -> bool:
    """Whether an exception is the operating system saying the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS
