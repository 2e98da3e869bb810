"""Inside every rank: skip the samples open_clip cannot read, list each one, and stop on purpose past --max-bad-samples.

This module holds the replacements; rank/patches.py puts them in place.

open_clip's CSV dataset raises on the first unreadable image, which ends that rank and leaves the
others blocked in a collective until gloo or NCCL gives up. Its webdataset pipeline already skips
what fails to decode, but silently and without naming the sample. Here, in both:
- a CSV row whose image cannot be opened or decoded, or whose caption is empty, is replaced by the
  next readable row, so every rank still yields the same number of samples and takes the same
  number of steps (DDP never waits on a rank that has fewer);
- a webdataset sample that fails to decode, or lacks an image or a caption, is dropped from the
  stream, whose batches per epoch are fixed (open_clip's `with_epoch`), so ranks stay in step too;
- each one is recorded with its reason (runs/bad_samples.py), and past the limit the rank raises
  TooManyBadSamples, whose one line is what the run's summary shows as its cause.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biomedclip_cli.data.shard_writer import SHARD_IMAGE_KEYS
from biomedclip_cli.runs.bad_samples import (
    BAD_SAMPLES_FILE,
    BadSample,
    bad_sample_limit,
    cut_by_give_up,
    record_bad_sample,
    recorded_bad_samples,
)

PREPARE_HINT = "bmclip prepare-csv --check-images finds them before training"
EXACT_CHECKS = 1000


class TooManyBadSamples(RuntimeError):
    """More samples could not be read than --max-bad-samples allows."""


class UnreadableSample(ValueError):
    """A webdataset sample that failed to decode, with the shard and key it came from."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source} {key}: {reason}")
        self.source, self.key, self.reason = source, key, reason


@dataclass
class SampleGuard:
    """This process's view of the run's bad samples: records new ones and enforces the limit for the whole run."""

    run_dir: Path
    max_bad_samples: float
    rank: int = field(default_factory=lambda: int(os.environ.get("RANK", "0")))
    met: set[tuple[str, str]] = field(default_factory=set)

    def skip(self, source: str, sample: str, reason: str, samples: int) -> None:
        """Record an unreadable sample (once per process); raise TooManyBadSamples when the run has more than its limit.

        The run's total is read from every process's list: at each of this process's first
        EXACT_CHECKS samples, then at each doubling of its count, so that a limit of hundreds of
        thousands costs a few dozen reads, not one per sample.
        """
        if (source, sample) in self.met:
            return
        self.met.add((source, sample))
        record_bad_sample(self.run_dir, BadSample(source, sample, reason, self.rank), f"rank{self.rank}-pid{os.getpid()}")
        logging.warning(f"bmclip: skipped {sample} from {source}: {reason}")
        count = len(self.met)
        if count > EXACT_CHECKS and count & (count - 1):
            return
        recorded = recorded_bad_samples(self.run_dir)
        limit = bad_sample_limit(self.max_bad_samples, samples)
        if len(recorded) > limit:
            first = recorded[0]
            shown = f"{self.max_bad_samples:g}" + ("" if self.max_bad_samples >= 1 else f" of {samples} = {limit}")
            raise TooManyBadSamples(f"{len(recorded)} samples could not be read, more than --max-bad-samples {shown}; "
                                    f"first: {first.sample} ({first.reason}); all in {self.run_dir / BAD_SAMPLES_FILE}; {PREPARE_HINT}")


def caption_problem(caption: object) -> str | None:
    """Why a caption cannot train (None when it can): missing, or empty once stripped."""
    if caption is None or (isinstance(caption, float) and math.isnan(caption)):
        return "empty caption"
    text = caption.decode("utf-8", errors="replace") if isinstance(caption, bytes) else str(caption)
    return "empty caption" if not text.strip() else None


def remembering_source(init: Callable[..., None]) -> Callable[..., None]:
    """CsvDataset.__init__ that also keeps the file the dataset was read from (the bad-sample list names it)."""

    def init_and_remember(self: Any, input_filename: str, *args: Any, **kwargs: Any) -> None:
        init(self, input_filename, *args, **kwargs)
        self.bmclip_source = str(input_filename)

    return init_and_remember


def skipping_unreadable_rows(getitem: Callable[[Any, int], Any], guard: SampleGuard) -> Callable[[Any, int], Any]:
    """CsvDataset.__getitem__ that replaces an unreadable row (image or caption) by the next readable one, recording each it skips."""

    def readable_item(self: Any, idx: int) -> Any:
        for offset in range(len(self)):
            index = (idx + offset) % len(self)
            reason = caption_problem(self.captions[index])
            if reason is None:
                try:
                    return getitem(self, index)
                except Exception as exn:  # any failure to open, decode or transform one image makes that row unreadable
                    reason = f"{type(exn).__name__}: {exn}"
            guard.skip(self.bmclip_source, str(self.images[index]), reason, len(self))
        raise TooManyBadSamples(f"no row of {self.bmclip_source} can be read; {PREPARE_HINT}")

    return readable_item


def naming_failures(decode: Callable[[Any, dict], dict]) -> Callable[[Any, dict], dict]:
    """webdataset's Decoder.decode whose failures carry the shard and sample they came from (UnreadableSample)."""

    def decode_or_name(self: Any, sample: dict) -> dict:
        try:
            return decode(self, sample)
        except Exception as exn:
            raise UnreadableSample(str(sample.get("__url__", "?")), str(sample.get("__key__", "?")),
                                   f"{type(exn).__name__}: {exn}") from exn

    return decode_or_name


def recording_handler(handler: Callable[[Exception], bool], guard: SampleGuard, samples: int) -> Callable[[Exception], bool]:
    """open_clip's webdataset error handler (log and continue), recording an UnreadableSample before passing over it."""

    def record_and_continue(exn: Exception) -> bool:
        if isinstance(exn, UnreadableSample):
            guard.skip(exn.source, exn.key, exn.reason, samples)
            return True
        return handler(exn)

    return record_and_continue


def listing_filter(guard: SampleGuard, samples: int) -> Callable[[dict], bool]:
    """open_clip's sample filter (an image among the members bmclip reads, and a caption), recording each sample it drops and why.

    The sample that a given-up hf:// shard was cut in the middle of is dropped without a row of its own.
    """

    def has_image_and_caption(sample: dict) -> bool:
        images = [ext for ext in SHARD_IMAGE_KEYS if ext in sample]
        reason = "no image" if not images else ("no caption" if "txt" not in sample else caption_problem(sample["txt"]))
        if reason is None and not sample[images[0]]:
            reason = "zero-byte image"
        if reason is not None:
            source, key = str(sample.get("__url__", "?")), str(sample.get("__key__", "?"))
            if not cut_by_give_up(guard.run_dir, source, key):  # else the given-up shard's own row accounts for it
                guard.skip(source, key, reason, samples)
        return reason is None

    return has_image_and_caption
