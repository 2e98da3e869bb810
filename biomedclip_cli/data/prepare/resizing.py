"""--resize SHORT_SIDE: figures written smaller, so that training decodes less (img2dataset's resize, for prepare-csv).

An image whose short side is over SHORT_SIDE is decoded by the trainer's own reader (EXIF orientation
applied, 16-bit and DICOM mapped to 8 bits), downscaled keeping its aspect ratio so that its short
side is SHORT_SIDE, and encoded again: JPEG as JPEG (quality 95), everything else as lossless PNG.
Downscaling is fast and high quality at once: a JPEG is decoded at the DCT scale (1/2, 1/4, 1/8) that
still leaves at least twice SHORT_SIDE, the result is reduced by a whole factor (box averaging) to
within three times the target, and Lanczos resampling does the rest (Pillow's `reducing_gap`).
Images at or under SHORT_SIDE are not decoded for this, and are written byte for byte.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from biomedclip_cli.problems import ProblemFound, error

if TYPE_CHECKING:
    from PIL import Image

MIN_SHORT_SIDE = 32
JPEG_QUALITY = 95
DRAFT_GAP = 2  # a JPEG is decoded at a DCT scale leaving at least this many times SHORT_SIDE
REDUCING_GAP = 3.0  # Pillow: reduce by a whole factor down to this many times the target, then Lanczos (near-exact)
JPEG_MAGIC = b"\xff\xd8\xff"


def check_short_side(short_side: int | None) -> None:
    """Raise ProblemFound (one --resize line) for a short side under MIN_SHORT_SIDE."""
    if short_side is not None and short_side < MIN_SHORT_SIDE:
        raise ProblemFound(error("--resize", f"{short_side} pixels is too small a short side (the least is {MIN_SHORT_SIDE})",
                                 f"pass --resize {MIN_SHORT_SIDE} or more, e.g. --resize 512 (open_clip's ViT-B crops 224)"))


def target_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(width, height) with the short side `short_side` and the aspect ratio of `size` (rounded); `size` itself if not larger."""
    width, height = size
    if min(width, height) <= short_side:
        return size
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def downscaled(image: Image.Image, short_side: int) -> Image.Image:
    """The image with its short side brought down to `short_side` (whole-factor reduce, then Lanczos)."""
    from PIL import Image

    size = target_size(image.size, short_side)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def encoded(image: Image.Image, as_jpeg: bool) -> tuple[bytes, str]:
    """The image's bytes and shard extension: JPEG (quality 95) when `as_jpeg`, else lossless PNG."""
    buffer = io.BytesIO()
    if as_jpeg:
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue(), "jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"
