"""The pixel bound (--max-pixels): how much an image is reduced while reading, and which images are too large to read.

An image over the bound is read reduced by the smallest whole factor that brings it under: JPEGs
while decoding (libjpeg's DCT scaling, nearly free), other formats after decoding. Decoding those
in full needs their memory, so past twice the bound (where Pillow itself refuses to decode) they
are not read at all: the caller skips them as bad samples, with this reason.
"""

from __future__ import annotations

import math

DECODE_LIMIT_FACTOR = 2


class ImageTooLarge(ValueError):
    """An image whose full decode would exceed twice --max-pixels, in a format that cannot be decoded reduced."""


def reduction_factor(width: int, height: int, max_pixels: int) -> int:
    """The smallest whole factor that divides both sides so that the image has at most `max_pixels` pixels (1: none needed)."""
    if width * height <= max_pixels:
        return 1
    factor = max(2, math.ceil(math.sqrt(width * height / max_pixels)))
    while math.ceil(width / factor) * math.ceil(height / factor) > max_pixels:
        factor += 1
    return factor


def check_decodable(width: int, height: int, max_pixels: int) -> None:
    """Raise ImageTooLarge for an image that must be decoded in full and has more than twice `max_pixels` pixels."""
    if width * height > DECODE_LIMIT_FACTOR * max_pixels:
        raise ImageTooLarge(f"{width}x{height} = {width * height:,} pixels, over twice --max-pixels {max_pixels:,}, in a format "
                            "that cannot be decoded reduced; raise --max-pixels or store the figure smaller (or as JPEG)")
