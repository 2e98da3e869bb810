"""How images are read into pixels: the intensity policy for values of more than 8 bits, and the pixel bound.

A leaf module (pure Python, no numpy): the config validates `--intensity` and `--max-pixels` with
it, and the image reader (data/pixels/) applies them. The policy's text is what bmclip.yaml records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["auto", "minmax", "percentile", "window", "clip"]
DEFAULT_INTENSITY = "auto"
AUTO_PERCENTILES = (0.5, 99.5)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own Image.MAX_IMAGE_PIXELS, past which it warns of a decompression bomb
INTENSITY_CHOICES = "auto, minmax, percentile:LOW,HIGH, window:CENTER,WIDTH or clip"
INTENSITY_FIX = "for example --intensity auto, or --intensity window:40,400 for a CT soft-tissue window"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class IntensityPolicy:
    """A parsed --intensity value.

    - auto: a DICOM file's own window (VOI LUT, or WindowCenter/WindowWidth) where it has one, else
      the 0.5-99.5 percentile window of each image;
    - minmax: each image's lowest value is black, its highest white;
    - percentile: the LOW-HIGH percentile window of each image (`first`, `second` are LOW, HIGH);
    - window: a fixed window (`first`, `second` are CENTER, WIDTH) in the file's units after
      DICOM's rescale, e.g. Hounsfield units for CT (window:40,400 is a soft-tissue window);
    - clip: values above 255 become 255, below 0 become 0 (what Pillow's convert("RGB") does).
    """

    kind: PolicyKind
    first: float = 0.0
    second: float = 0.0

    @classmethod
    def parse(cls, text: str) -> IntensityPolicy:
        """The policy a --intensity value names; ValueError with the reason when it names none."""
        name, _, arguments = text.strip().partition(":")
        name = name.strip().lower()
        if name in ("auto", "minmax", "clip"):
            if arguments.strip():
                raise ValueError(f"'{name}' takes no values (got {text!r})")
            return cls(name)  # type: ignore[arg-type]
        if name not in ("percentile", "window"):
            raise ValueError(f"{text!r} is not an intensity policy ({INTENSITY_CHOICES})")
        pair = _PAIR.match(arguments)
        if pair is None:
            shape = "LOW,HIGH such as percentile:1,99" if name == "percentile" else "CENTER,WIDTH such as window:40,400"
            raise ValueError(f"{name} needs two numbers, {shape} (got {text!r})")
        first, second = float(pair.group(1)), float(pair.group(2))
        if not math.isfinite(first) or not math.isfinite(second):
            raise ValueError(f"{name} needs finite numbers (got {text!r})")
        if name == "percentile" and not 0 <= first < second <= 100:
            raise ValueError(f"percentile needs 0 <= LOW < HIGH <= 100 (got {text!r})")
        if name == "window" and second <= 0:
            raise ValueError(f"window needs a WIDTH above 0 (got {text!r})")
        return cls(name, first, second)  # type: ignore[arg-type]

    def text(self) -> str:
        """The policy as --intensity takes it (and bmclip.yaml records it)."""
        if self.kind in ("percentile", "window"):
            return f"{self.kind}:{self.first:g},{self.second:g}"
        return self.kind

    def describe(self) -> str:
        """The policy in words, for summaries and preflight lines."""
        low, high = AUTO_PERCENTILES
        return {
            "auto": f"auto (a DICOM file's own window, else each image's {low:g}-{high:g} percentile window)",
            "minmax": "minmax (each image's lowest value black, highest white)",
            "percentile": f"percentile (each image's {self.first:g}-{self.second:g} percentile window)",
            "window": f"window (center {self.first:g}, width {self.second:g}, in the file's units after rescale)",
            "clip": "clip (values above 255 saturate, as Pillow's convert does)",
        }[self.kind]


def canonical_intensity(text: str) -> str:
    """A --intensity value in its canonical spelling; ValueError when it names no policy."""
    return IntensityPolicy.parse(text).text()


@dataclass(frozen=True)
class PixelSettings:
    """How the image reader turns a file into a model's pixels: the intensity policy, the pixel bound, the decode scale.

    Images over `max_pixels` are read reduced to fit under it (see data/pixels/reader.py). With
    `min_short_side`, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose short side is
    still at least that many pixels: what a training crop needs, at a fraction of the decoding (0: full size).
    Plain values only, so that it travels to worker processes.
    """

    intensity: IntensityPolicy = IntensityPolicy("auto")
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_short_side: int = 0

    @classmethod
    def of(cls, intensity: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> PixelSettings:
        """Settings from the option values (an --intensity text and --max-pixels)."""
        return cls(IntensityPolicy.parse(intensity), max_pixels)
