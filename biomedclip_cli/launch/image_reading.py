"""Inside every rank: open_clip reads its images with bmclip's image reader (data/pixels/), in CSV and webdataset data alike.

open_clip opens CSV images with `Image.open` and decodes shard members with webdataset's `pilrgb`
handler; both end in Pillow's convert("RGB"), which saturates 16-bit values at 255 and cannot read
DICOM. Here, from outside:
- CsvDataset reads each row's image with the reader (the run's --intensity and --max-pixels);
- webdataset's `pilrgb` handler becomes the reader, for every image member, and a sample whose image
  is a member open_clip does not look for (tif, tiff, dcm, bmp, gif) offers it to open_clip as its png.
"""

from __future__ import annotations

from typing import Any

import open_clip_train.data as open_clip_data
import webdataset.autodecode

from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.data.shard_writer import IMAGE_EXTENSIONS, SHARD_IMAGE_KEYS
from biomedclip_cli.pixel_policy import PixelSettings

OPEN_CLIP_IMAGE_KEY = "png"  # one of the members open_clip renames to its image
OTHER_IMAGE_KEYS = tuple(key for key in SHARD_IMAGE_KEYS if key not in IMAGE_EXTENSIONS)  # read by bmclip, not looked for by open_clip
PIL_RGB_SPEC = "pilrgb"  # the webdataset image spec open_clip decodes with
original_imagehandler = webdataset.autodecode.imagehandler
original_decode = webdataset.autodecode.Decoder.decode


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


def read_csv_images(settings: PixelSettings) -> None:
    """Make open_clip's CsvDataset read each row's image with the reader."""

    def getitem(self: Any, idx: int) -> Any:
        image = read_rgb(str(self.images[idx]), settings)
        return self.transforms(image), self.tokenize([str(self.captions[idx])])[0]

    open_clip_data.CsvDataset.__getitem__ = getitem


def has_image_and_caption(sample: dict) -> bool:
    """open_clip's filter of shard samples, with every image member the reader reads (a run's sample guard replaces it with one that
    also lists what it drops)."""
    return "txt" in sample and any(key in sample for key in SHARD_IMAGE_KEYS)


def read_shard_images(settings: PixelSettings) -> None:
    """Make webdataset decode open_clip's shard images with the reader, tif/tiff/dcm/bmp/gif members included.

    Installed again (bench-data in a test process), it replaces its earlier self: both wrap webdataset's originals.
    """

    def imagehandler(imagespec: str, *args: Any, **kwargs: Any) -> Any:
        return ShardImageHandler(settings) if imagespec == PIL_RGB_SPEC else original_imagehandler(imagespec, *args, **kwargs)

    def decode(self: Any, sample: dict) -> dict:
        decoded = original_decode(self, sample)
        if not any(key in decoded for key in IMAGE_EXTENSIONS):
            other = next((key for key in OTHER_IMAGE_KEYS if key in decoded), None)
            if other is not None:  # decoded under its own name (a .dcm member without its preamble is still DICOM), offered as png
                decoded[OPEN_CLIP_IMAGE_KEY] = decoded.pop(other)
        return decoded

    webdataset.autodecode.imagehandler = imagehandler
    webdataset.autodecode.Decoder.decode = decode
    open_clip_data.filter_no_caption_or_no_image = has_image_and_caption


def install_image_reader(settings: PixelSettings) -> None:
    """open_clip's CSV and webdataset readers use bmclip's image reader for this run (see the module docstring)."""
    read_csv_images(settings)
    read_shard_images(settings)
