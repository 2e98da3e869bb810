"""Pixel values of any depth mapped to 8 bits by an intensity policy (see biomedclip_cli/pixel_policy.py).

Pure numpy on one image at a time. A window maps values to [0, 1]; the result is rounded to 0..255.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from biomedclip_cli.pixel_policy import AUTO_PERCENTILES, IntensityPolicy

UnitWindow = Callable[[np.ndarray], np.ndarray]  # values -> floats in [0, 1] (a DICOM file's own VOI LUT or window)
PERCENTILE_SAMPLE = 1 << 18  # percentiles of a larger image are taken on every k-th pixel: the same window to a fraction of a level


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM's linear window (PS3.3 C.11.2.1.2.1): below center - width/2 black, above center + width/2 white, a line between."""
    span = max(width - 1.0, 1e-6)
    return np.clip((values - (center - 0.5)) / span + 0.5, 0.0, 1.0)


def sigmoid_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM's SIGMOID VOI LUT function (PS3.3 C.11.2.1.3.1), scaled to [0, 1]."""
    return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / max(width, 1e-6)))


def stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """`low` black, `high` white, a line between; a flat image (low == high) is black."""
    if not high > low:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def percentile_range(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The `low` and `high` percentiles of an image's values: the smallest values at or below which that share of pixels lies.

    8- and 16-bit unsigned images count every pixel in a histogram (a tenth of the time of a sort);
    others use a regular sample of at most PERCENTILE_SAMPLE pixels, which moves the window by a
    fraction of a level.
    """
    if values.dtype in (np.uint8, np.uint16):
        cumulative = np.cumsum(np.bincount(values.reshape(-1)))
        total = cumulative[-1]
        targets = [max(np.ceil(share / 100 * total), 1) for share in (low, high)]  # pixels at or below each percentile
        found = np.searchsorted(cumulative, targets)
        return float(found[0]), float(found[1])
    flat = values.reshape(-1)
    step = max(1, flat.size // PERCENTILE_SAMPLE)
    sample = np.percentile(flat[::step], [low, high], method="inverted_cdf")
    return float(sample[0]), float(sample[1])


def finite(values: np.ndarray) -> np.ndarray:
    """A float image with NaN and infinities replaced by its lowest finite value (integer images as they are)."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return values
    good = values[np.isfinite(values)]
    return np.nan_to_num(values, nan=float(good.min()) if good.size else 0.0, posinf=float(good.max()) if good.size else 0.0,
                         neginf=float(good.min()) if good.size else 0.0)


def unit_values(values: np.ndarray, policy: IntensityPolicy, own_window: UnitWindow | None = None) -> np.ndarray:
    """An image's values mapped to [0, 1] by `policy`; `own_window` is a DICOM file's own window, which `auto` prefers."""
    values = finite(values)
    if policy.kind == "auto" and own_window is not None:
        return own_window(values.astype(np.float32))
    if policy.kind == "clip":
        return np.clip(values.astype(np.float32), 0.0, 255.0) / 255.0
    if policy.kind == "window":
        return linear_window(values.astype(np.float32), policy.first, policy.second)
    low, high = float(values.min()), float(values.max())
    if policy.kind != "minmax":
        window = percentile_range(values, *(AUTO_PERCENTILES if policy.kind == "auto" else (policy.first, policy.second)))
        low, high = window if window[1] > window[0] else (low, high)  # a sparse image (a few bright spots on black): its full range
    return stretch(values.astype(np.float32), low, high)


def to_8bit(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as uint8 0..255, rounded."""
    return np.rint(unit * 255.0).astype(np.uint8)
