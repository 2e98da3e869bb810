"""Files written under a temporary name and renamed into place when complete, so a finished-looking file is a complete one."""

from __future__ import annotations

from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is complete (renamed over `path` at the end; open_clip's globs never see it)."""
    return path.with_name(path.name + PARTIAL_SUFFIX)
