"""Webdataset shard patterns (local or hf://): the shards they expand to, which are missing, their sample counts, the first sample.

Of hf:// shards, only the first sample of each source's first shard is read.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from braceexpand import braceexpand

from biomedclip_cli.data.locations import is_remote, sources
from biomedclip_cli.data.shard_writer import SHARD_IMAGE_KEYS
from biomedclip_cli.hub.paths import is_hub_url
from biomedclip_cli.hub.remote_shards import inspect_hub_source
from biomedclip_cli.problems import Problem, error

CAPTION_SUFFIX = "txt"
SAMPLE_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's key.suffix split (importing webdataset would import torch)


@dataclass
class ShardSet:
    """The shards of one data option: expanded per '::' source, with what is missing and the sample count if known.

    `problems` holds what stopped a look at hf:// sources (no access to the repo, no such revision, ...).
    """

    by_source: list[list[str]]
    missing: list[str]
    num_samples: int | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of shards over all sources."""
        return sum(len(shards) for shards in self.by_source)


def _source_samples(shards: list[str]) -> int | None:
    """Samples in one source from sizes.json (or __len__) beside its first shard, as open_clip reads them."""
    folder = Path(shards[0]).parent
    sizes_file, len_file = folder / "sizes.json", folder / "__len__"
    if sizes_file.is_file():
        try:
            sizes = json.loads(sizes_file.read_text(encoding="utf-8"))
            return sum(int(sizes[Path(shard).name]) for shard in shards)
        except (ValueError, KeyError, TypeError):
            return None
    if len_file.is_file():
        try:
            return int(len_file.read_text(encoding="utf-8").strip())
        except ValueError:
            return None
    return None


def inspect_shards(data: str, revision: str | None = None, option: str = "--train-data") -> ShardSet:
    """Expand a brace pattern (with '::' sources), list missing shards and count samples where sizes are known.

    Local shards are missing when the file is not there; hf:// shards when the repo's listing at
    `revision` lacks them. Counts come from sizes files beside the shards (on disk or in the repo).
    """
    by_source = [list(braceexpand(source)) for source in sources(data)]
    missing: list[str] = []
    counts: list[int | None] = []
    problems: list[Problem] = []
    for source, shards in zip(sources(data), by_source, strict=True):
        if is_hub_url(source):
            hub = inspect_hub_source(source, shards, revision, option)
            missing += hub.missing
            counts.append(hub.num_samples)
            problems += hub.problems
            continue
        missing += [shard for shard in shards if not is_remote(shard) and not Path(shard).is_file()]
        counts.append(None if any(is_remote(s) for s in shards) else _source_samples(shards))
    total = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return ShardSet(by_source, missing, total, problems)


def check_shards(shards: ShardSet, option: str, data: str) -> list[Problem]:
    """Problems with a shard pattern: nothing matched, or some shards missing (named)."""
    on_hub = all(is_hub_url(s) for s in shards.missing)
    if shards.count and len(shards.missing) == shards.count:
        return [error(option, f"pattern '{data}' matches no shard (first expected: {shards.missing[0]})",
                      "check the folder and the brace range, e.g. 'shards/{000000..000009}.tar'", local_only=not on_hub)]
    if shards.missing:
        shown = ", ".join(shards.missing[:3]) + (f" and {len(shards.missing) - 3} more" if len(shards.missing) > 3 else "")
        fix = ("fix the brace range (the hub repo's listing has no such files)" if on_hub
               else "fix the brace range or fetch the missing shards")
        return [error(option, f"{len(shards.missing)} of {shards.count} shards are missing: {shown}", fix, local_only=not on_hub)]
    return []


@dataclass(frozen=True)
class ShardSample:
    """A sample read from a shard's start: its key and its members' bytes by suffix."""

    key: str
    members: dict[str, bytes]


def first_samples(shard: str, limit: int) -> list[ShardSample]:
    """The first `limit` samples of a shard (local or hf://), read from the tar's start; empty if it holds none."""
    from biomedclip_cli.hub.streaming import open_shard

    samples: list[ShardSample] = []
    with open_shard(shard) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:  # BMCLIP_HUB_RETRIES: a 429 is waited out
        for member in tar:
            match = SAMPLE_KEY.match(member.name)
            if not member.isreg() or match is None or Path(member.name).name.startswith("__"):
                continue
            if not samples or match.group(1) != samples[-1].key:
                if len(samples) == limit:
                    break
                samples.append(ShardSample(match.group(1), {}))
            extracted = tar.extractfile(member)
            samples[-1].members[match.group(2).lower()] = extracted.read() if extracted is not None else b""
    return samples


@dataclass(frozen=True)
class SourceStart:
    """The first samples of one '::' source's first shard (what preflight looks at before launching)."""

    shard: str
    samples: list[ShardSample]


def read_source_starts(shards: ShardSet, option: str, limit: int) -> list[SourceStart] | Problem:
    """The first `limit` samples of each source's first shard: hf:// sources always (a problem when unreadable), local
    ones where readable (a local shard that cannot be read is left to the training's bad-sample handling)."""
    from biomedclip_cli.hub.streaming import ShardGivenUp

    missing = set(shards.missing)
    starts: list[SourceStart] = []
    for source in shards.by_source:
        shard = next((s for s in source if s not in missing), None)
        if shard is None:
            continue
        try:
            starts.append(SourceStart(shard, first_samples(shard, limit)))
        except ShardGivenUp as exc:  # the hub kept rate-limiting, or the transfer kept failing: not the shard's fault
            return error(option, str(exc), exc.fix)
        except (OSError, tarfile.TarError, EOFError) as exc:
            if is_hub_url(shard):
                return error(option, f"cannot read shard '{shard}': {exc}", "check that it is a webdataset .tar shard")
    return starts


def check_first_samples(starts: list[SourceStart], option: str) -> list[Problem]:
    """Problems with the first sample of each hf:// source's first shard: open_clip needs a .txt caption and an image.

    open_clip drops samples without them silently, and a shard set where none has them hangs training;
    a hub source is checked here because finding out after launch costs a download per rank.
    """
    for start in starts:
        if not is_hub_url(start.shard):
            continue
        if not start.samples:
            return [error(option, f"shard '{start.shard}' holds no sample", "check the brace range, or rewrite the shard")]
        first = start.samples[0]
        suffixes = list(first.members)
        if CAPTION_SUFFIX not in suffixes or not set(SHARD_IMAGE_KEYS) & set(suffixes):
            lacking = ".txt caption" if CAPTION_SUFFIX not in suffixes else f"image ({', '.join('.' + s for s in SHARD_IMAGE_KEYS)})"
            return [error(option, f"the first sample of '{start.shard}' ('{first.key}', with {', '.join(suffixes)}) has no {lacking}",
                          "open_clip drops such samples and can hang when none is left; write each sample as <key>.jpg and <key>.txt")]
    return []
