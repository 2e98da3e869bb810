"""The options that say how images become pixels (--intensity, --max-pixels), shared by prepare-csv and eval.

`train` takes the same two from its config fields (config.py), with the same help.
"""

from __future__ import annotations

from typing import Annotated

import typer

from biomedclip_cli.pixel_policy import INTENSITY_FIX, PixelSettings
from biomedclip_cli.problems import ProblemFound, error

INTENSITY_HELP = ("How images of more than 8 bits (16-bit PNG/TIFF, DICOM) map to the model's 8: auto (a DICOM file's own window, "
                  "else each image's 0.5-99.5 percentile window), minmax, percentile:LOW,HIGH, window:CENTER,WIDTH (in the file's "
                  "units after rescale, e.g. Hounsfield: window:40,400), or clip (values above 255 saturate).")
MAX_PIXELS_HELP = ("Images with more pixels are read reduced to fit (JPEGs while decoding); other formats over twice this are "
                   "skipped as unreadable.")
PIXELS_PANEL = "Pixels"

IntensityOpt = Annotated[str, typer.Option("--intensity", help=INTENSITY_HELP, rich_help_panel=PIXELS_PANEL, metavar="POLICY")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", min=1, help=MAX_PIXELS_HELP, rich_help_panel=PIXELS_PANEL, metavar="PIXELS")]


def pixel_settings(intensity: str, max_pixels: int) -> PixelSettings:
    """The reader's settings from the two options; ProblemFound naming --intensity when it names no policy."""
    try:
        return PixelSettings.of(intensity, max_pixels)
    except ValueError as exc:
        raise ProblemFound(error("--intensity", str(exc), INTENSITY_FIX)) from None
