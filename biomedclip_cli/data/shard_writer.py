"""Webdataset shards in BIOMEDICA's layout: NNNNNN.tar files of jpg/txt/json samples, with a sizes.json."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from biomedclip_cli.partial_files import partial_path

if TYPE_CHECKING:
    from PIL import Image

SIZES_FILE = "sizes.json"
# The image keys open_clip's webdataset pipeline renames to its image (wds.rename(image="jpg;png;jpeg;webp")), in its order.
IMAGE_EXTENSIONS = ("jpg", "png", "jpeg", "webp")
# The image members bmclip reads from shards (data/pixels/ reads them; training offers the others to open_clip as its png).
SHARD_IMAGE_KEYS = (*IMAGE_EXTENSIONS, "tif", "tiff", "dcm", "bmp", "gif")


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    """The image encoded as JPEG (RGB)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def shard_pattern(folder: Path, count: int) -> str:
    """The brace pattern that names `count` shards written by ShardWriter in `folder`."""
    return str(folder / f"{{000000..{count - 1:06d}}}.tar")


class ShardWriter:
    """Writes samples into numbered shards of at most `shard_size` samples, then sizes.json.

    Each shard is written under a temporary name and renamed when complete, so an interrupted
    run never leaves a truncated shard that looks finished. A sizes.json already in the folder is
    deleted on opening: it counts shards this writer replaces, and an interrupted run must not leave
    it beside new shards (open_clip and bmclip would take its counts for theirs).
    """

    def __init__(self, folder: Path, shard_size: int = 10_000) -> None:
        import webdataset

        self._tar_writer = webdataset.TarWriter
        self.folder = folder
        self.shard_size = shard_size
        self.sizes: dict[str, int] = {}
        self._writer: Any = None
        self._shard: Path | None = None  # the shard being written, under its partial_path until complete
        self._count = 0
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SIZES_FILE).unlink(missing_ok=True)

    def _open_next(self) -> None:
        self._close_current()
        self._shard = self.folder / f"{len(self.sizes):06d}.tar"
        self._writer = self._tar_writer(str(partial_path(self._shard)))
        self.sizes[self._shard.name] = 0
        self._count = 0

    def _close_current(self) -> None:
        if self._writer is None or self._shard is None:
            return
        self._writer.close()
        os.replace(partial_path(self._shard), self._shard)
        self._writer, self._shard = None, None

    def write(self, key: str, image: bytes, caption: str, metadata: dict[str, Any], image_ext: str = "jpg") -> None:
        """Add one sample (`key`.jpg, `key`.txt, `key`.json);
        `image_ext` is one of SHARD_IMAGE_KEYS (plain open_clip reads IMAGE_EXTENSIONS)."""
        if image_ext not in SHARD_IMAGE_KEYS:
            raise ValueError(f"bmclip reads shard images only as {', '.join(SHARD_IMAGE_KEYS)}, not {image_ext}")
        if self._writer is None or self._count >= self.shard_size:
            self._open_next()
        self._writer.write({"__key__": key, image_ext: image, "txt": caption, "json": json.dumps(metadata).encode()})
        self._count += 1
        self.sizes[next(reversed(self.sizes))] = self._count

    def close(self) -> None:
        """Finish the last shard and write sizes.json (read by open_clip and bmclip to count samples)."""
        self._close_current()
        partial = partial_path(self.folder / SIZES_FILE)
        partial.write_text(json.dumps(self.sizes, indent=1), encoding="utf-8")
        os.replace(partial, self.folder / SIZES_FILE)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        elif self._writer is not None and self._shard is not None:
            self._writer.close()
            partial_path(self._shard).unlink(missing_ok=True)
