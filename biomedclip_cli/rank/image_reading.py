"""Inside every rank: the replacements that make open_clip read its images with bmclip's reader (data/pixels/), CSV and webdataset alike.

open_clip opens CSV images with `Image.open` and decodes shard members with webdataset's `pilrgb`
handler; both end in Pillow's convert("RGB"), which saturates 16-bit values at 255 and cannot read
DICOM. rank/patches.py puts these in place of them:
- a CsvDataset.__getitem__ that reads each row's image with the reader (the run's --intensity and --max-pixels);
- a `pilrgb` handler that is the reader, for every image member; open_clip's sample filter and
  webdataset's decoding extended to the members open_clip does not look for (tif, tiff, dcm, bmp,
  gif), whose images are then offered to open_clip as its png."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.data.shard_writer import IMAGE_EXTENSIONS, SHARD_IMAGE_KEYS
from biomedclip_cli.pixel_policy import PixelSettings

OPEN_CLIP_IMAGE_KEY = "png"  # one of the members open_clip renames to its image
OTHER_IMAGE_KEYS = tuple(key for key in SHARD_IMAGE_KEYS if key not in IMAGE_EXTENSIONS)  # read by bmclip, not looked for by open_clip
PIL_RGB_SPEC = "pilrgb"  # the webdataset image spec open_clip decodes with


class ShardImageHandler:
    """A webdataset decoding handler: an image member (by its key's extension) as the reader's 8-bit RGB image."""

    def __init__(self, settings: PixelSettings) -> None:
        self.settings = settings

    def __call__(self, key: str, data: bytes) -> Any:
        """The decoded image for an image member, None for other members (webdataset then tries its other handlers)."""
        extension = key.rsplit(".", 1)[-1].lower()
        if extension not in SHARD_IMAGE_KEYS:
            return None
        return read_rgb(data, self.settings, f"member.{extension}")


def csv_item_reader(settings: PixelSettings) -> Callable[[Any, int], Any]:
    """A CsvDataset.__getitem__ that reads the row's image with the reader: (the transformed image, the tokenized caption)."""

    def getitem(self: Any, idx: int) -> Any:
        image = read_rgb(str(self.images[idx]), settings)
        return self.transforms(image), self.tokenize([str(self.captions[idx])])[0]

    return getitem


def reading_imagehandler(settings: PixelSettings, imagehandler: Callable[..., Any]) -> Callable[..., Any]:
    """webdataset's imagehandler factory, with open_clip's `pilrgb` spec answered by the reader."""

    def handler(imagespec: str, *args: Any, **kwargs: Any) -> Any:
        return ShardImageHandler(settings) if imagespec == PIL_RGB_SPEC else imagehandler(imagespec, *args, **kwargs)

    return handler


def offering_open_clip_keys(decode: Callable[[Any, dict], dict]) -> Callable[[Any, dict], dict]:
    """webdataset's Decoder.decode, after which an image decoded from a member open_clip does not look for becomes its png.

    The member is decoded under its own name, so a .dcm member without its preamble is still read as DICOM.
    """

    def decoded_for_open_clip(self: Any, sample: dict) -> dict:
        decoded = decode(self, sample)
        if not any(key in decoded for key in IMAGE_EXTENSIONS):
            other = next((key for key in OTHER_IMAGE_KEYS if key in decoded), None)
            if other is not None:
                decoded[OPEN_CLIP_IMAGE_KEY] = decoded.pop(other)
        return decoded

    return decoded_for_open_clip


def has_image_and_caption(sample: dict) -> bool:
    """open_clip's filter of shard samples, with every image member the reader reads."""
    return "txt" in sample and any(key in sample for key in SHARD_IMAGE_KEYS)
