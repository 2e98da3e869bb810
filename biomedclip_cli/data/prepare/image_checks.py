"""Image checks for prepare-csv: read each image with the trainer's own reader, measure it, hash its bytes.

Every image's header is read, to count what kind of file it is (8-bit, high bit depth, DICOM, EXIF
rotated, over --max-pixels) and to fill DICOM captions; with --check-images each is also decoded as
training will decode it. For shards, an image the reader changes (more than 8 bits, DICOM, stored
rotated, over the bound) or that open_clip cannot read (TIFF, BMP, GIF) is converted here to the
8-bit PNG the model would see, so that plain open_clip reads the shards right too. With --resize, an
image written by prepare-csv (to shards, or extracted from shards for a CSV) whose short side is
larger is downscaled here too (resizing.py).

Checks run in worker processes, a batch of rows per task, with a bounded number of batches in flight,
so the rows come back in input order and memory does not grow with the number of rows.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice

from biomedclip_cli.data.prepare.dicom_captions import CaptionTemplate
from biomedclip_cli.data.prepare.resizing import DRAFT_GAP, JPEG_MAGIC, downscaled, encoded
from biomedclip_cli.data.prepare.rows import (
    DICOM_DECODER_MISSING,
    DUPLICATE,
    IMAGE_TOO_LARGE,
    TOO_SMALL,
    TRUNCATED_IMAGE,
    UNREADABLE_IMAGE,
    Reason,
    Row,
)
from biomedclip_cli.data.shard_writer import IMAGE_EXTENSIONS
from biomedclip_cli.pixel_policy import PixelSettings

BATCH_ROWS = 32
BATCHES_IN_FLIGHT_PER_WORKER = 4


@dataclass(frozen=True)
class CheckSettings:
    """What to do with each image: decode it fully, its short side, its content hash, how to read its pixels,
    DICOM captions, whether to convert it for shards, and the short side to downscale written images to (--resize)."""

    decode: bool = False
    min_side: int | None = None
    digest: bool = False
    pixels: PixelSettings = PixelSettings()
    caption_template: CaptionTemplate | None = None
    for_shards: bool = False
    resize: int | None = None


@dataclass(frozen=True)
class ImageTask:
    """The picklable part of a row a worker needs: the image file, or the image bytes from a shard, its format, and whether
    the row still needs a caption (from DICOM tags)."""

    path: str | None
    data: bytes | None
    ext: str = ""
    needs_caption: bool = False


@dataclass(frozen=True)
class ImageVerdict:
    """What the checks found: the reason to reject the image (None if fine), its content hash if asked, what kind of file it is,
    its caption from DICOM tags (None: not asked), and the image written instead of the file's bytes (None: the bytes as they
    are): `converted`, a `converted_ext` file, and whether it was downscaled (`resized`: then it replaces the bytes extracted
    for a CSV too; otherwise it is the 8-bit PNG only the shards get)."""

    problem: Reason | None = None
    digest: bytes | None = None
    kind: str | None = None
    rotated: bool = False
    reduced: bool = False
    caption: str | None = None
    converted: bytes | None = None
    converted_ext: str = "png"
    resized: bool = False


def available_cores() -> int:
    """Cores this process may run on (the default number of checking workers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _decode_problem(exc: Exception) -> Reason:
    from PIL import UnidentifiedImageError

    from biomedclip_cli.data.pixels.bounds import ImageTooLarge
    from biomedclip_cli.data.pixels.dicom import MissingDicomDecoder

    if isinstance(exc, UnidentifiedImageError):
        return Reason(UNREADABLE_IMAGE, "not an image format Pillow, tifffile or pydicom recognises")
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ImageTooLarge):
        return Reason(IMAGE_TOO_LARGE, message)
    if isinstance(exc, MissingDicomDecoder):
        return Reason(DICOM_DECODER_MISSING, message)
    return Reason(TRUNCATED_IMAGE if "truncated" in message.lower() else UNREADABLE_IMAGE, message)


def _is_jpeg(task: ImageTask, data: bytes | None) -> bool:
    """Whether the file is a JPEG, by its first bytes."""
    if data is not None:
        return data.startswith(JPEG_MAGIC)
    with open(task.path or "", "rb") as stream:
        return stream.read(len(JPEG_MAGIC)) == JPEG_MAGIC


def inspect_image(task: ImageTask, settings: CheckSettings) -> ImageVerdict:
    """Check one image: read its header (kind, size, DICOM tags), compare its short side, decode it as training will, hash it.

    Decoding uses the trainer's own reader (data/pixels/), so an image that passes here cannot crash
    a training worker. A file that is decoded or hashed is read in one call.
    """
    from biomedclip_cli.data.pixels.reader import ImageKind, image_facts, read_image

    data = task.data
    if data is None and (settings.digest or settings.decode):
        try:
            with open(task.path or "", "rb") as stream:
                data = stream.read()
        except OSError as exc:
            return ImageVerdict(Reason(UNREADABLE_IMAGE, exc.strerror or str(exc)))
    digest = hashlib.blake2b(data, digest_size=16).digest() if settings.digest and data is not None else None
    name = task.path or f"image.{task.ext}"
    source = data if data is not None else name
    try:
        decoded = read_image(source, settings.pixels, name) if settings.decode else None
        facts = decoded.facts if decoded is not None else image_facts(source, settings.pixels, name)
    except Exception as exc:  # Pillow, tifffile and pydicom raise many types; a header alone rejects only where a check was asked for
        return ImageVerdict(_decode_problem(exc), digest) if settings.decode or settings.min_side else ImageVerdict(None, digest)
    caption = None
    if task.needs_caption and settings.caption_template is not None and facts.dicom_header is not None:
        caption = settings.caption_template.fill(facts.dicom_header)
    width, height = facts.size
    if settings.min_side and min(width, height) < settings.min_side:
        return ImageVerdict(Reason(TOO_SMALL, f"{width}x{height}, shorter side under {settings.min_side}"), digest, facts.kind.value)
    verdict = ImageVerdict(None, digest, facts.kind.value, facts.rotated, facts.over_bound, caption)
    needs_png = settings.for_shards and (facts.kind is not ImageKind.EIGHT_BIT or facts.rotated or facts.over_bound
                                         or task.ext not in IMAGE_EXTENSIONS)
    # --resize applies to images prepare-csv writes: all of them for shards, shard members extracted for a CSV
    wants_resize = (settings.resize is not None and (settings.for_shards or task.path is None)
                    and min(width, height) > settings.resize)
    if not (needs_png or wants_resize):
        return verdict
    try:
        if decoded is None:
            pixels = replace(settings.pixels, min_short_side=DRAFT_GAP * settings.resize) if settings.resize else settings.pixels
            decoded = read_image(source, pixels, name)
        image = decoded.image
        resized = wants_resize and min(image.size) > (settings.resize or 0)
        if not (resized or needs_png):  # the pixel bound already read it under the short side; the file goes as it is
            return verdict
        if resized:
            image = downscaled(image, settings.resize or 0)
        as_jpeg = resized and facts.kind is ImageKind.EIGHT_BIT and _is_jpeg(task, data)
        converted, ext = encoded(image, as_jpeg)
    except Exception as exc:  # the header read, the pixels did not
        return ImageVerdict(_decode_problem(exc), digest)
    return replace(verdict, converted=converted, converted_ext=ext, resized=resized)


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
    return ImageTask(str(row.image_path) if row.image_path is not None else None, row.image_bytes, row.image_ext,
                     row.missing_caption is not None)


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
        context.set_forkserver_preload([__name__, "biomedclip_cli.data.pixels.reader"])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)


def inspect_rows(rows: Iterable[Row], settings: CheckSettings, workers: int) -> Iterator[tuple[Row, ImageVerdict | None]]:
    """Each row with its image verdict (None where the row was already rejected or nothing is checked), in order.

    With one worker the checks run in this process; with more, batches go to a process pool with
    at most `workers * BATCHES_IN_FLIGHT_PER_WORKER` batches outstanding.
    """
    if workers <= 1:
        for batch in _batches(rows):
            yield from zip(batch, inspect_batch([_task(row) for row in batch], settings), strict=True)
        return
    pool = _worker_pool(workers)
    pending: deque[tuple[list[Row], Future[list[ImageVerdict | None]]]] = deque()
    try:
        for batch in _batches(rows):
            with _interrupts_deferred():
                pending.append((batch, pool.submit(inspect_batch, [_task(row) for row in batch], settings)))
            if len(pending) >= workers * BATCHES_IN_FLIGHT_PER_WORKER:
                done, future = pending.popleft()
                yield from zip(done, future.result(), strict=True)
        while pending:
            done, future = pending.popleft()
            yield from zip(done, future.result(), strict=True)
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
