"""Shards given up for the rest of a run: what each delivered and lost, kept in files that every reading process consults.

A shard whose transfer keeps failing is given up (hub/streaming.py). Giving it up again on the next
pass would cost the same retries again, and a data loader's worker processes are started afresh
each epoch, so what one process gave up is written down: each process appends one JSON line per
shard it gave up to a file of its own, `given-up-rank<R>-pid<P>.jsonl`, in a folder the caller
names (`register_hf_scheme(folder)`; a rank passes its run folder's `bad-samples/`), and every
process reads all of them before it opens an hf:// shard. One writer per file, so no two processes
(on one node or several, over a network file system too) ever append to the same file; a line is
written with one `write` call, and a reader skips a line it cannot parse. The records live as long
as the folder's files: the run's bad-sample merge turns them into rows and removes them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from biomedclip_cli.hub.paths import is_hub_url, parse_hub_url

GIVEN_UP_PATTERN = "given-up-*.jsonl"


def shard_identity(url: str) -> str:
    """One spelling of a shard's URL (an hf:// revision quoted the same way), so that a lookup matches however it was written."""
    if is_hub_url(url):
        try:
            return parse_hub_url(url).url()
        except ValueError:
            return url
    return url


@dataclass(frozen=True)
class GivenUpShard:
    """One shard given up: its URL, the rank that gave it up, how it failed, and the samples it delivered and lost.

    `samples_read` counts the samples delivered whole; `cut_sample` is the key of the one the failure
    cut in the middle (webdataset hands over what it had of it, without the missing members);
    `samples_in_shard` is the shard's count in the sizes file beside it (None when there is none).
    """

    url: str
    rank: int
    failures: int
    at_byte: int
    size: int | None
    cause: str
    rate_limited: bool
    samples_read: int
    cut_sample: str | None
    samples_in_shard: int | None

    def loss(self) -> str:
        """The samples lost, in words: 'about 60 of its 100 (sizes.json)' or 'an unknown number (no sizes file gives its count)'."""
        if self.samples_in_shard is None:
            return "an unknown number of samples lost (no sizes file gives its count)"
        lost = max(0, self.samples_in_shard - self.samples_read)
        return f"about {lost:,} of its {self.samples_in_shard:,} samples lost (its count in the sizes file)"

    def failure(self) -> str:
        """How reading the shard failed, in words."""
        of = f" of {self.size:,}" if self.size is not None else ""
        return f"reading it failed {self.failures} times in a row, the last at byte {self.at_byte:,}{of} ({self.cause})"

    def reason(self) -> str:
        """Why the shard was given up and what it lost, as one line (a bad-sample row's reason, the warning)."""
        return f"{self.failure()}; {self.samples_read:,} samples read, {self.loss()}"


class GivenUpShards:
    """The given-up shards recorded in one folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def records(self) -> list[GivenUpShard]:
        """Every shard given up so far, the first record of each."""
        found: dict[str, GivenUpShard] = {}
        for path in sorted(self.folder.glob(GIVEN_UP_PATTERN)):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    record = GivenUpShard(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short by a killed process
                found.setdefault(shard_identity(record.url), record)
        return list(found.values())

    def find(self, url: str) -> GivenUpShard | None:
        """The record of `url` if it was given up."""
        identity = shard_identity(url)
        return next((record for record in self.records() if shard_identity(record.url) == identity), None)

    def add(self, record: GivenUpShard) -> None:
        """Append the record to this process's own file, in one write."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"given-up-rank{record.rank}-pid{os.getpid()}.jsonl"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, (json.dumps(asdict(record)) + "\n").encode())
        finally:
            os.close(descriptor)

    def remove(self) -> None:
        """Delete the folder's given-up files (once their records are kept elsewhere)."""
        for path in self.folder.glob(GIVEN_UP_PATTERN):
            path.unlink(missing_ok=True)
