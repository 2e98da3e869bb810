"""TIFF files through tifffile, for what Pillow cannot read right: 16-bit colour, odd layouts, pyramids, stacks.

The reader sends a TIFF here when Pillow cannot open it, when its samples have more than 8 bits in
a layout Pillow opens as 8-bit RGB (keeping each value's high byte, which turns 12-bit data stored
in 16 bits nearly black), or when it is over the pixel bound. tifffile decompresses through
imagecodecs and gives the values themselves. Of a pyramid (a whole
slide image), the largest level within the pixel bound is read; of a stack (z, time, separate
channels), the middle plane; of more than three channels, the first three as RGB (two: the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import numpy as np

from biomedclip_cli.data.pixels.bounds import check_decodable

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
ORIENTATION_TAG = 274
PLANE_AXES = "YXS"


def looks_like_tiff(head: bytes) -> bool:
    """Whether the first bytes of a file are a TIFF (or BigTIFF) header."""
    return head[:4] in TIFF_MAGICS


@dataclass(frozen=True)
class TiffPixels:
    """One plane of a TIFF: (rows, columns) or (rows, columns, 3) values, the full size, and its Orientation tag (1: as stored)."""

    values: np.ndarray
    full_size: tuple[int, int]
    orientation: int


def _plane(values: np.ndarray, axes: str) -> np.ndarray:
    """The middle plane of every axis but Y, X and samples; samples (or channels) last, at most three."""
    channel_axis = "S" if "S" in axes else "C" if "C" in axes else None
    for axis in reversed(range(len(axes))):
        if axes[axis] not in ("Y", "X", channel_axis):
            values = np.take(values, values.shape[axis] // 2, axis=axis)
    kept = [axis for axis in axes if axis in ("Y", "X", channel_axis)]
    values = np.moveaxis(values, [kept.index("Y"), kept.index("X")], [0, 1])
    if values.ndim == 3:
        values = values[:, :, :3] if values.shape[2] >= 3 else values[:, :, 0]
    return values


def read_plane(source: IO[bytes], max_pixels: int) -> TiffPixels:
    """The plane a model sees of a TIFF, from the largest pyramid level with at most `max_pixels` (else the full image).

    A TIFF with no level under twice `max_pixels` raises ImageTooLarge before anything is decoded.
    """
    import tifffile

    with tifffile.TiffFile(source) as tiff:
        series = tiff.series[0]
        levels = list(series.levels)
        full = levels[0]
        size = (int(full.shape[full.axes.index("X")]), int(full.shape[full.axes.index("Y")]))
        level = next((candidate for candidate in levels
                      if candidate.shape[candidate.axes.index("X")] * candidate.shape[candidate.axes.index("Y")] <= max_pixels), full)
        check_decodable(int(level.shape[level.axes.index("X")]), int(level.shape[level.axes.index("Y")]), max_pixels)
        tag = tiff.pages.first.tags.get(ORIENTATION_TAG)
        orientation = int(tag.value) if tag is not None else 1
        try:
            values = level.asarray()
        except ValueError as exc:  # tifffile names the codec package a compression needs
            raise ValueError(f"{exc} (pip install imagecodecs)" if "imagecodecs" in str(exc) else str(exc)) from exc
        return TiffPixels(_plane(values, level.axes), size, orientation)


def tiff_size(source: IO[bytes]) -> tuple[tuple[int, int], str]:
    """The (width, height) and numpy dtype character code of a TIFF's first image, from its header."""
    import tifffile

    with tifffile.TiffFile(source) as tiff:
        series = tiff.series[0]
        return (int(series.shape[series.axes.index("X")]), int(series.shape[series.axes.index("Y")])), series.dtype.str
