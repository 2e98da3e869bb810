"""Where prepare-csv's accepted rows go: a CSV (extracting shard images to files for it) and/or BIOMEDICA-layout shards."""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path

from biomedclip_cli.data.csv_writer import AtomicCsvWriter
from biomedclip_cli.data.prepare.rows import MISSING_FILE, UNREADABLE_IMAGE, Reason, Row
from biomedclip_cli.data.prepare.sources import safe_name
from biomedclip_cli.data.shard_writer import ShardWriter

SHARD_FILE = re.compile(r"\d{6}\.tar")
IMAGE_COLUMN = "filepath"
CAPTION_COLUMN = "caption"


class Destination:
    """Where accepted rows go: one CSV and/or one shard set, extracting shard images for the CSV."""

    def __init__(self, stack: ExitStack, csv: Path | None, shards: Path | None, extras: tuple[str, ...], shard_size: int,
                 extract_to: Path | None) -> None:
        self._csv = stack.enter_context(AtomicCsvWriter(csv, (IMAGE_COLUMN, CAPTION_COLUMN, *extras))) if csv else None
        self._shards = stack.enter_context(ShardWriter(shards, shard_size)) if shards else None
        self._extract_to = extract_to
        self._extras = extras
        self.written = 0

    def write(self, row: Row, converted: bytes | None = None, converted_ext: str = "png", resized: bool = False) -> Reason | None:
        """Write a row; the shards get `converted` (a `converted_ext` file: the 8-bit PNG the model sees, or the image
        downscaled by --resize) instead of the image's own bytes when given, and so does an image extracted for the CSV
        when it was `resized`.

        The reason it cannot be written when its file cannot be read for the shards.
        """
        if self._shards is not None:
            image = converted if converted is not None else row.image_bytes if row.image_bytes is not None else _file_bytes(row.image_path)
            if isinstance(image, Reason):
                return image
            ext = converted_ext if converted is not None else row.image_ext
            key = f"{self.written:09d}-{safe_name(row.name.rsplit('/', 1)[-1])}"
            self._shards.write(key, image, row.caption, {**row.metadata, "bmclip_source": row.source}, ext)
        if self._csv is not None:
            extracted = (converted, converted_ext) if resized and converted is not None else None
            self._csv.write([str(self._image_file(row, extracted)), row.caption, *(row.extras.get(c, "") for c in self._extras)])
        self.written += 1
        return None

    def _image_file(self, row: Row, resized: tuple[bytes, str] | None) -> Path:
        """The file the CSV names: the row's own, or a shard member extracted (downscaled when `resized` holds its bytes, ext)."""
        if row.image_path is not None:
            return row.image_path
        assert self._extract_to is not None and row.image_bytes is not None
        data, ext = resized if resized is not None else (row.image_bytes, row.image_ext)
        path = self._extract_to / f"{row.name}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def shard_names(self) -> set[str]:
        """Names of the shards written (after the writer closed)."""
        return set(self._shards.sizes) if self._shards is not None else set()


def _file_bytes(path: Path | None) -> bytes | Reason:
    try:
        return Path(path or "").read_bytes()
    except OSError as exc:
        return Reason(MISSING_FILE if isinstance(exc, FileNotFoundError) else UNREADABLE_IMAGE, f"{path}: {exc.strerror or exc}")


def remove_stale_shards(folder: Path | None, keep: set[str]) -> None:
    """After --overwrite: delete numbered shards of an earlier run that this run did not write."""
    if folder is None:
        return
    for path in folder.iterdir():
        if SHARD_FILE.fullmatch(path.name) and path.name not in keep:
            path.unlink()
