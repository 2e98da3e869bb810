"""Image checks for prepare-csv: decode with Pillow as the trainer will, measure the short side, hash the bytes.

Checks run in worker processes, a batch of rows per task, with a bounded number of batches in flight,
so the rows come back in input order and memory does not grow with the number of rows.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import signal
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from biomedclip_cli.data.prepare.rows import DUPLICATE, TOO_SMALL, TRUNCATED_IMAGE, UNREADABLE_IMAGE, Reason, Row

BATCH_ROWS = 32
BATCHES_IN_FLIGHT_PER_WORKER = 4


@dataclass(frozen=True)
class CheckSettings:
    """What to look at in each image: decode it fully, its short side, its content hash."""

    decode: bool = False
    min_side: int | None = None
    digest: bool = False

    @property
    def reads_images(self) -> bool:
        """Whether any check needs the image at all (if not, rows pass through untouched)."""
        return self.decode or self.min_side is not None or self.digest


@dataclass(frozen=True)
class ImageTask:
    """The picklable part of a row a worker needs: the image file, or the image bytes from a shard."""

    path: str | None
    data: bytes | None


@dataclass(frozen=True)
class ImageVerdict:
    """What the checks found: the reason to reject the image (None if fine) and its content hash if asked."""

    problem: Reason | None = None
    digest: bytes | None = None


def available_cores() -> int:
    """Cores this process may run on (the default number of checking workers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _decode_problem(exc: Exception) -> Reason:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return Reason(UNREADABLE_IMAGE, "not an image format Pillow recognises")
    message = str(exc) or type(exc).__name__
    return Reason(TRUNCATED_IMAGE if "truncated" in message.lower() else UNREADABLE_IMAGE, message)


def inspect_image(task: ImageTask, settings: CheckSettings) -> ImageVerdict:
    """Check one image: open it (header only unless decoding), compare its short side, decode to RGB, hash.

    Decoding does what open_clip's transform does (`convert("RGB")`), so an image that passes here
    cannot crash a training worker. A file that is decoded or hashed is read in one call.
    """
    from PIL import Image

    data = task.data
    if data is None and (settings.digest or settings.decode):
        try:
            with open(task.path or "", "rb") as stream:
                data = stream.read()
        except OSError as exc:
            return ImageVerdict(Reason(UNREADABLE_IMAGE, exc.strerror or str(exc)))
    digest = hashlib.blake2b(data, digest_size=16).digest() if settings.digest and data is not None else None
    if not (settings.decode or settings.min_side):
        return ImageVerdict(None, digest)
    try:
        with Image.open(io.BytesIO(data) if data is not None else task.path or "") as image:
            if settings.min_side and min(image.size) < settings.min_side:
                width, height = image.size
                return ImageVerdict(Reason(TOO_SMALL, f"{width}x{height}, shorter side under {settings.min_side}"), digest)
            if settings.decode:
                image.load()
                if image.mode != "RGB":
                    image.convert("RGB")
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError... for bad files
        return ImageVerdict(_decode_problem(exc), digest)
    return ImageVerdict(None, digest)


def inspect_batch(tasks: list[ImageTask | None], settings: CheckSettings) -> list[ImageVerdict | None]:
    """Check a batch of images (None for rows already rejected); the unit of work sent to a worker.

    Pillow's warnings (e.g. about huge or odd images) are silenced: the verdict carries what matters.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [None if task is None else inspect_image(task, settings) for task in tasks]


def _task(row: Row) -> ImageTask | None:
    if row.rejected is not None:
        return None
    return ImageTask(str(row.image_path) if row.image_path is not None else None, row.image_bytes)


def _batches(rows: Iterable[Row]) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH_ROWS)):
        yield batch


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done, then raise it.

    A Ctrl-C that lands while the pool is starting a worker process would leave that process half
    started, printing a traceback after bmclip has exited; submitting under this block avoids it.
    """
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that ignore Ctrl-C (the main process handles it) and start with Pillow imported."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload([__name__, "PIL.Image"])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)


def inspect_rows(rows: Iterable[Row], settings: CheckSettings, workers: int) -> Iterator[tuple[Row, ImageVerdict | None]]:
    """Each row with its image verdict (None where the row was already rejected or nothing is checked), in order.

    With one worker the checks run in this process; with more, batches go to a process pool with
    at most `workers * BATCHES_IN_FLIGHT_PER_WORKER` batches outstanding.
    """
    if not settings.reads_images:
        yield from ((row, None) for row in rows)
        return
    if workers <= 1:
        for batch in _batches(rows):
            yield from zip(batch, inspect_batch([_task(row) for row in batch], settings))
        return
    pool = _worker_pool(workers)
    pending: deque[tuple[list[Row], Future[list[ImageVerdict | None]]]] = deque()
    try:
        for batch in _batches(rows):
            with _interrupts_deferred():
                pending.append((batch, pool.submit(inspect_batch, [_task(row) for row in batch], settings)))
            if len(pending) >= workers * BATCHES_IN_FLIGHT_PER_WORKER:
                done, future = pending.popleft()
                yield from zip(done, future.result())
        while pending:
            done, future = pending.popleft()
            yield from zip(done, future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Deduplicator:
    """Remembers the hash of every image kept so far and names the earlier row a duplicate repeats.

    This is the one part of prepare-csv whose memory grows with the rows (about 150 bytes a unique image).
    """

    def __init__(self) -> None:
        self._first: dict[bytes, str] = {}

    def problem(self, digest: bytes | None, source: str) -> Reason | None:
        """The duplicate reason if this content was kept before, else None (and the content is remembered)."""
        if digest is None:
            return None
        first = self._first.get(digest)
        if first is None:
            self._first[digest] = source
            return None
        return Reason(DUPLICATE, f"same bytes as {first}")
