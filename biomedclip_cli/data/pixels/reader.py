"""The image reader: a file (or a shard member's bytes) as the 8-bit RGB image a model's transform expects.

- 8-bit images (L, P, RGB, CMYK, ...) as Pillow reads them; transparent parts (RGBA, LA, PA, P or
  L with a transparent colour) are laid over white, as a figure on a page is;
- more than 8 bits (Pillow's I;16, I;16B, I, F modes; 16-bit colour PNG through imagecodecs; TIFF
  of more than 8 bits a sample, or too large, through tifffile) mapped to 8 bits by the intensity
  policy (biomedclip_cli/pixel_policy.py, windowing.py); Pillow keeps only the high byte of 16-bit
  colour, which turns 12-bit data nearly black;
- DICOM through pydicom (dicom.py): rescale, the file's own window, MONOCHROME1, the middle frame;
- EXIF orientation (and a TIFF's Orientation tag) applied, as a viewer shows the image;
- images over --max-pixels read reduced (bounds.py).
Which kind of file it is comes from its first bytes, not its name (a `.dcm` name lets a DICOM file
without the 128-byte preamble be read too).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from biomedclip_cli.data.pixels import dicom, tiff
from biomedclip_cli.data.pixels.bounds import check_decodable, reduction_factor
from biomedclip_cli.data.pixels.windowing import UnitWindow, to_8bit, unit_values
from biomedclip_cli.pixel_policy import PixelSettings

Image.MAX_IMAGE_PIXELS = None  # bmclip bounds images itself (--max-pixels), reducing instead of raising DecompressionBombError
HEAD_BYTES = dicom.DICOM_MAGIC_OFFSET + len(dicom.DICOM_MAGIC)
HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
TIFF_BITS_PER_SAMPLE = 258
EXIF_ORIENTATION = 0x0112  # also a TIFF's own Orientation tag
ORIENTATION_TRANSPOSE = {  # EXIF/TIFF orientation -> the transpose that shows the image upright (as Pillow's ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
ImageSource = str | os.PathLike[str] | bytes


class ImageKind(str, Enum):
    """What a file holds, as prepare-csv counts it: 8-bit pixels, more bits (mapped by the intensity policy), or DICOM."""

    EIGHT_BIT = "8-bit"
    HIGH_BIT_DEPTH = "high bit depth"
    DICOM = "DICOM"


@dataclass(frozen=True)
class ImageFacts:
    """What a file's header says: its kind, its (width, height), whether it is stored rotated, and whether it is over the bound.

    `dicom_header` is a DICOM file's data set (its tags, for captions); None for other files.
    """

    kind: ImageKind
    size: tuple[int, int]
    rotated: bool
    over_bound: bool
    dicom_header: Any = None


@dataclass(frozen=True)
class DecodedImage:
    """An image as the model gets it (8-bit RGB), with the facts of the file it came from."""

    image: Image.Image
    facts: ImageFacts


@contextmanager
def _opened(source: ImageSource) -> Iterator[IO[bytes]]:
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        with open(source, "rb") as stream:
            yield stream


def _head(stream: IO[bytes]) -> bytes:
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    return head


def _is_dicom(head: bytes, name: str) -> bool:
    return dicom.looks_like_dicom(head) or name.lower().endswith(dicom.DICOM_SUFFIXES)


def _name(source: ImageSource, name: str) -> str:
    return name or ("" if isinstance(source, bytes) else os.fspath(source))


def read_image(source: ImageSource, settings: PixelSettings, name: str = "") -> DecodedImage:
    """The image in a file (a path) or in bytes, as the model gets it; `name` (a file or member name) helps recognise DICOM.

    Raises what the file's decoder raises for an unreadable file, ImageTooLarge (bounds.py) and
    MissingDicomDecoder (dicom.py).
    """
    name = _name(source, name)
    with _opened(source) as stream:
        head = _head(stream)
        if _is_dicom(head, name):
            return _read_dicom(stream, settings)
        return _read_with_pillow(stream, settings, tiff.looks_like_tiff(head))


def read_rgb(source: ImageSource, settings: PixelSettings, name: str = "") -> Image.Image:
    """The 8-bit RGB image read_image gives (the training and evaluation path)."""
    return read_image(source, settings, name).image


def image_facts(source: ImageSource, settings: PixelSettings, name: str = "") -> ImageFacts:
    """What a file's header says about it (no pixel is decoded): fast enough to ask of every image prepare-csv reads."""
    name = _name(source, name)
    with _opened(source) as stream:
        head = _head(stream)
        if _is_dicom(head, name):
            header = dicom.read_header(stream)
            size = (int(header.get("Columns", 0)), int(header.get("Rows", 0)))
            return ImageFacts(ImageKind.DICOM, size, False, size[0] * size[1] > settings.max_pixels, header)
        try:
            image = Image.open(stream)
        except UnidentifiedImageError:
            if not tiff.looks_like_tiff(head):
                raise
            stream.seek(0)
            size, dtype = tiff.tiff_size(stream)
            kind = ImageKind.EIGHT_BIT if dtype.endswith("u1") else ImageKind.HIGH_BIT_DEPTH
            return ImageFacts(kind, size, False, size[0] * size[1] > settings.max_pixels)
        with image:
            kind = ImageKind.HIGH_BIT_DEPTH if image.mode in HIGH_BIT_DEPTH_MODES or _wider_than_8_bits(image) else ImageKind.EIGHT_BIT
            return ImageFacts(kind, image.size, _orientation(image) != 1, image.size[0] * image.size[1] > settings.max_pixels)


def _wider_than_8_bits(image: Image.Image) -> bool:
    """A colour image whose samples have more than 8 bits, which Pillow opens as 8-bit RGB(A) by dropping the low byte."""
    if image.mode in HIGH_BIT_DEPTH_MODES:
        return False
    if image.format == "TIFF":
        bits = image.tag_v2.get(TIFF_BITS_PER_SAMPLE, 8)  # type: ignore[attr-defined]
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    tile = getattr(image, "tile", [])  # an opened file's decoding plan: a 16-bit PNG's raw mode says ";16"
    return image.format == "PNG" and bool(tile) and ";16" in str(tile[0].args)


def _orientation(image: Image.Image) -> int:
    """The EXIF (or TIFF) orientation an image is stored with (1: upright), read only when the file carries EXIF or is a TIFF."""
    if "exif" not in image.info and image.format != "TIFF":
        return 1
    value = image.getexif().get(EXIF_ORIENTATION, 1)
    return value if value in ORIENTATION_TRANSPOSE else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    transpose = ORIENTATION_TRANSPOSE.get(orientation)
    return image.transpose(transpose) if transpose is not None else image


def _over_white(image: Image.Image) -> Image.Image:
    """A transparent image laid over white (a transparent background is a page's, not black)."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _mapped(values: np.ndarray, settings: PixelSettings, own_window: UnitWindow | None = None, inverted: bool = False) -> Image.Image:
    """Values of any depth (gray, or RGB last) as an 8-bit RGB image, through the intensity policy."""
    unit = unit_values(values, settings.intensity, own_window)
    pixels = to_8bit(1.0 - unit if inverted else unit)
    return Image.fromarray(pixels).convert("RGB")


def _reduced(image: Image.Image, max_pixels: int) -> tuple[Image.Image, bool]:
    factor = reduction_factor(image.size[0], image.size[1], max_pixels)
    return (image.reduce(factor), True) if factor > 1 else (image, False)


def _read_with_pillow(stream: IO[bytes], settings: PixelSettings, is_tiff: bool) -> DecodedImage:
    """Pillow's decode, for what it reads right; TIFFs it cannot read, or reads short of their bits, or too large, go to tifffile."""
    try:
        image: Image.Image = Image.open(stream)
    except UnidentifiedImageError:
        if not is_tiff:
            raise
        stream.seek(0)
        return _read_tiff(stream, settings)
    size = image.size
    over_bound = size[0] * size[1] > settings.max_pixels
    if is_tiff and (over_bound or _wider_than_8_bits(image)):
        stream.seek(0)
        return _read_tiff(stream, settings)
    if _wider_than_8_bits(image):
        return _read_png_colour(stream, image, settings)
    if image.format == "JPEG":
        _draft(image, settings)
    elif over_bound:
        check_decodable(size[0], size[1], settings.max_pixels)
    image.load()
    orientation = _orientation(image)
    kind = ImageKind.EIGHT_BIT
    if image.mode in HIGH_BIT_DEPTH_MODES:
        kind = ImageKind.HIGH_BIT_DEPTH
        image = _mapped(np.asarray(image), settings)
    elif image.mode in TRANSPARENT_MODES or (image.mode in ("P", "L", "RGB") and "transparency" in image.info):
        image = _over_white(image)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image, _ = _reduced(image, settings.max_pixels)
    return DecodedImage(_upright(image, orientation), ImageFacts(kind, size, orientation != 1, over_bound))


def _draft(image: Image.Image, settings: PixelSettings) -> None:
    """Have libjpeg decode a JPEG reduced by a DCT scale (1/2, 1/4, 1/8): at least what the pixel bound needs, and as much as
    the short side the model's transform needs allows (settings.min_short_side); nothing when neither asks for it."""
    width, height = image.size
    factor = reduction_factor(width, height, settings.max_pixels)
    if settings.min_short_side:
        factor = max(factor, min(width, height) // settings.min_short_side)
    factor = min(8, factor)
    if factor > 1:
        image.draft(image.mode, (-(-width // factor), -(-height // factor)))


def _read_png_colour(stream: IO[bytes], image: Image.Image, settings: PixelSettings) -> DecodedImage:
    """A 16-bit colour PNG through imagecodecs, which keeps its values (alpha dropped: such files are scans, not page figures)."""
    import imagecodecs

    check_decodable(image.size[0], image.size[1], settings.max_pixels)
    stream.seek(0)
    values = imagecodecs.png_decode(stream.read())
    mapped, _ = _reduced(_mapped(values[..., :3] if values.ndim == 3 else values, settings), settings.max_pixels)
    orientation = _orientation(image)
    return DecodedImage(_upright(mapped, orientation), ImageFacts(ImageKind.HIGH_BIT_DEPTH, image.size, orientation != 1,
                                                                  image.size[0] * image.size[1] > settings.max_pixels))


def _read_tiff(stream: IO[bytes], settings: PixelSettings) -> DecodedImage:
    plane = tiff.read_plane(stream, settings.max_pixels)
    if plane.values.dtype == np.uint8:
        kind, image = ImageKind.EIGHT_BIT, Image.fromarray(plane.values).convert("RGB")
    else:
        kind, image = ImageKind.HIGH_BIT_DEPTH, _mapped(plane.values, settings)
    image, _ = _reduced(image, settings.max_pixels)
    size = plane.full_size
    return DecodedImage(_upright(image, plane.orientation),
                        ImageFacts(kind, size, plane.orientation != 1, size[0] * size[1] > settings.max_pixels))


def _read_dicom(stream: IO[bytes], settings: PixelSettings) -> DecodedImage:
    pixels = dicom.read_pixels(stream, settings.max_pixels)
    if pixels.eight_bit:
        image = Image.fromarray(255 - pixels.values if pixels.inverted else pixels.values).convert("RGB")
    else:
        image = _mapped(pixels.values, settings, pixels.own_window, pixels.inverted)
    size = image.size
    image, reduced = _reduced(image, settings.max_pixels)
    return DecodedImage(image, ImageFacts(ImageKind.DICOM, size, False, reduced, pixels.dataset))
