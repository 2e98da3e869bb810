"""Inside every rank: --where and --classes, tested on each shard sample's `json` member before the sample is decoded.

rank/patches.py puts `selecting` in front of open_clip's sample filter, which webdataset applies to
the raw members of each sample, so a sample the filter drops costs a JSON parse, never a decode. A
dropped sample is not a bad sample: it is counted (runs/filter_counts.py), not listed. Since
open_clip's epochs count batches after this filter, --train-num-samples counts kept samples.

A filter that keeps nothing would have the loader read shards forever (an epoch ends only once
its batches are full). A process that has tested NOTHING_KEPT_LIMIT samples without keeping one
stops the run instead, with NothingKept, whose one line is the run summary's cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.runs.filter_counts import FILTER_COUNTS, FilterCounter
from biomedclip_cli.sample_filter import DOCS, SampleFilter

NOTHING_KEPT_LIMIT = 10_000  # a BIOMEDICA shard holds about 10,000 samples; a class or licence rarer than that is not one to train on


class NothingKept(RuntimeError):
    """A process tested NOTHING_KEPT_LIMIT samples and the filter kept none."""


@dataclass(frozen=True)
class SampleSelection:
    """The samples a run keeps (`where`), and where each process that reads data keeps its counts (None: in memory only)."""

    where: SampleFilter
    counts_folder: Path | None = None

    @classmethod
    def for_run(cls, where: SampleFilter | None, run_dir: Path | None) -> SampleSelection | None:
        """The selection of a run with this filter (None without one), counted in <run_dir>/filter-counts/."""
        if where is None:
            return None
        return cls(where, run_dir / FILTER_COUNTS if run_dir is not None else None)

    def selecting(self, then: Callable[[dict], bool], writer: str) -> Callable[[dict], bool]:
        """A webdataset sample filter: the sample's json tested first (and counted under `writer`), then `then` on those kept."""
        counter = FilterCounter(self.counts_folder, writer)
        where = self.where

        def wanted(sample: dict) -> bool:
            kept = where.matches_json(sample.get("json"))
            counter.add(kept)
            if not kept:
                if not counter.kept and counter.dropped >= NOTHING_KEPT_LIMIT:
                    raise NothingKept(f"--where kept none of the first {counter.dropped:,} samples read (where {where.text}); check the "
                                      f"field names and values against a sample's json, see {DOCS}")
                return False
            return then(sample)

        return wanted
