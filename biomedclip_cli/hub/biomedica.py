"""Shortcut names for the BIOMEDICA shard sets on the Hugging Face hub (`biomedica:commercial`, ...).

One table, used by `train` (through preflight) and by every command that takes shard patterns:
call `expand_shortcuts` on a data option before anything else looks at it. Pure data, cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass

from biomedclip_cli.problems import Problem, error

PREFIX = "biomedica:"
REPO_URL = "hf://datasets/BIOMEDICA/biomedica_webdataset_24M"


@dataclass(frozen=True)
class Subset:
    """One licence group of BIOMEDICA: its folder in the repo, its shard count and about how many pairs it holds."""

    folder: str
    shards: int
    samples: int

    @property
    def shard_range(self) -> str:
        """The six-digit brace range of its shards, e.g. '{000000..001861}'."""
        return f"{{000000..{self.shards - 1:06d}}}"


SUBSETS = (
    Subset("commercial", 1862, 17_600_000),
    Subset("noncommercial", 560, 5_300_000),
    Subset("other", 115, 1_100_000),
)
ALL = "all"


def _pattern(subsets: tuple[Subset, ...]) -> str:
    if len(subsets) == 1:
        return f"{REPO_URL}/{subsets[0].folder}/{subsets[0].shard_range}.tar"
    return f"{REPO_URL}/{{{','.join(f'{s.folder}/{s.shard_range}' for s in subsets)}}}.tar"


def _sets() -> dict[str, tuple[Subset, ...]]:
    return {**{PREFIX + s.folder: (s,) for s in SUBSETS}, PREFIX + ALL: SUBSETS}


SHORTCUTS: dict[str, str] = {name: _pattern(subsets) for name, subsets in _sets().items()}
"""Shortcut name -> the hf:// brace pattern it stands for (one '::' source each)."""

KNOWN_SAMPLES: dict[str, int] = {SHORTCUTS[name]: sum(s.samples for s in subsets) for name, subsets in _sets().items()}
"""hf:// pattern of a known set -> its approximate number of image-caption pairs (used when the repo has no sizes file)."""


def is_shortcut(source: str) -> bool:
    """Whether one '::' source is written as a BIOMEDICA shortcut name."""
    return source.strip().lower().startswith(PREFIX)


def expand_shortcuts(data: str, option: str = "--train-data") -> str | Problem:
    """The data option with every '::' source that is a shortcut replaced by its hf:// pattern, or the problem with an unknown name."""
    expanded = []
    for source in data.split("::"):
        if not is_shortcut(source):
            expanded.append(source)
            continue
        name = source.strip().lower()
        if name not in SHORTCUTS:
            return error(option, f"unknown BIOMEDICA set '{source}'", f"choose one of {', '.join(SHORTCUTS)}")
        expanded.append(SHORTCUTS[name])
    return "::".join(expanded)


def known_samples(pattern: str) -> int | None:
    """About how many samples an hf:// pattern of a known BIOMEDICA set holds, else None."""
    return KNOWN_SAMPLES.get(pattern)


def shortcut_help() -> str:
    """The shortcuts with their sizes, in one paragraph for `bmclip train --help`."""
    described = [f"{name} ({sum(s.shards for s in subsets):,} shards, ~{sum(s.samples for s in subsets) / 1e6:.1f}M pairs)"
                 for name, subsets in _sets().items()]
    return f"BIOMEDICA sets for --train-data ({REPO_URL.removeprefix('hf://')}): " + ", ".join(described) + "."
