"""Inside every rank: the replacements that make open_clip read its images with bmclip's reader (data/pixels/), CSV and webdataset alike.

open_clip opens CSV images with `Image.open` and decodes shard members with webdataset's `pilrgb`
handler; both end in Pillow's convert("RGB"), which saturates 16-bit values at 255 and cannot read
DICOM. rank/patches.py puts these in place of them:
- a CsvDataset.__getitem__ that reads each row's image with the reader (the run's --intensity and --max-pixels);
- a `pilrgb` handler that is the reader, for every image member; open_clip's sample filter and
  webdataset's decoding extended to the members open_clip does not look for (tif, tiff, dcm, bmp,
  gif), whose images are then offered to open_clip as its png.
With --scaled-decode (the default) the reader decodes JPEGs no larger than the transform needs
(decode_short_side): a CSV dataset's from its own transforms; shard members' from the training
transform handed to open_clip's get_data, since webdataset makes its decoding handler only when the
pipeline is first iterated (the training crop needs more pixels than the evaluation resize)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.data.shard_writer import IMAGE_EXTENSIONS, SHARD_IMAGE_KEYS
from biomedclip_cli.pixel_policy import PixelSettings

OPEN_CLIP_IMAGE_KEY = "png"  # one of the members open_clip renames to its image
OTHER_IMAGE_KEYS = tuple(key for key in SHARD_IMAGE_KEYS if key not in IMAGE_EXTENSIONS)  # read by bmclip, not looked for by open_clip
PIL_RGB_SPEC = "pilrgb"  # the webdataset image spec open_clip decodes with
DATASET_SETTINGS = "bmclip_pixel_settings"  # the attribute a CsvDataset keeps its reader settings in


def decode_short_side(transform: Any) -> int:
    """The short side (pixels) an image needs for `transform` to take any of its crops at full resolution; 0 when unknown.

    A random resized crop (torchvision's, timm's) of size S over at least a fraction `scale[0]` of the image, with aspect ratios
    in `ratio`, is never narrower than sqrt(scale[0] * min(ratio[0], 1 / ratio[1])) of the short side, so the short side needs
    S divided by that (open_clip's train transform at 224 px: 273); a resize to S (open_clip's eval transform) needs S.
    """
    from torchvision.transforms import Resize

    for step in getattr(transform, "transforms", [transform]):
        if all(hasattr(step, name) for name in ("size", "scale", "ratio")):
            narrowest = math.sqrt(step.scale[0] * min(step.ratio[0], 1 / step.ratio[1]))
            return math.ceil(max(_sides(step.size)) / narrowest)
        if isinstance(step, Resize) and step.max_size is None:
            return max(_sides(step.size))
    return 0


def _sides(size: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (size,) if isinstance(size, int) else tuple(size)


def for_transform(settings: PixelSettings, transform: Any, scaled_decode: bool) -> PixelSettings:
    """The reader's settings for a dataset with this transform: JPEGs decoded no larger than it needs, with scaled_decode."""
    return dataclasses.replace(settings, min_short_side=decode_short_side(transform)) if scaled_decode else settings


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


def csv_item_reader(settings: PixelSettings, scaled_decode: bool) -> Callable[[Any, int], Any]:
    """A CsvDataset.__getitem__ that reads the row's image with the reader: (the transformed image, the tokenized caption)."""

    def getitem(self: Any, idx: int) -> Any:
        own = self.__dict__.get(DATASET_SETTINGS)
        if own is None:  # a dataset's first item: its transform decides how large its JPEGs are decoded
            own = self.__dict__[DATASET_SETTINGS] = for_transform(settings, self.transforms, scaled_decode)
        image = read_rgb(str(self.images[idx]), own)
        return self.transforms(image), self.tokenize([str(self.captions[idx])])[0]

    return getitem


@dataclasses.dataclass
class ShardReading:
    """How shard members are read: the reader's settings, sized for the training transform once get_data is handed it."""

    settings: PixelSettings
    scaled_decode: bool

    def reading_imagehandler(self, imagehandler: Callable[..., Any]) -> Callable[..., Any]:
        """webdataset's imagehandler factory, with open_clip's `pilrgb` spec answered by the reader."""

        def handler(imagespec: str, *args: Any, **kwargs: Any) -> Any:
            if imagespec != PIL_RGB_SPEC:
                return imagehandler(imagespec, *args, **kwargs)
            return ShardImageHandler(self.settings)

        return handler

    def sized_for_training(self, get_data: Callable[..., Any]) -> Callable[..., Any]:
        """open_clip's get_data(args, (preprocess_train, preprocess_val), ...), after which shard members are decoded for
        preprocess_train."""

        def getting(args: Any, preprocess_fns: Any, *rest: Any, **kwargs: Any) -> Any:
            self.settings = for_transform(self.settings, preprocess_fns[0], self.scaled_decode)
            return get_data(args, preprocess_fns, *rest, **kwargs)

        return getting


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
