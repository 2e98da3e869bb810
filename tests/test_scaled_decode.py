"""--scaled-decode: large JPEG figures decoded at the DCT scale the training crop needs, and what the model gets from them.

A figure of 2048x1536 is decoded at 1/4 (512x384) for open_clip's 224 px train transform, whose smallest crop is 82% of the
short side; the crop the model gets is then the same picture as from the full decode (PSNR well above 35 dB).
"""

from __future__ import annotations

import math
from pathlib import Path

import open_clip
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision.transforms import Compose, InterpolationMode, RandomResizedCrop, ToTensor
from torchvision.transforms import functional as F

from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.data.shard_writer import ShardWriter, jpeg_bytes
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.rank.image_reading import decode_short_side

TRAIN_224 = open_clip.image_transform(224, is_train=True)
EVAL_224 = open_clip.image_transform(224, is_train=False)


def figure(width: int, height: int) -> Image.Image:
    """A figure: gradients, filled shapes with sharp edges, thin strokes."""
    image = Image.merge("RGB", [Image.linear_gradient("L").rotate(40 * band).resize((width, height)) for band in range(3)])
    draw = ImageDraw.Draw(image)
    for index in range(6):
        x, y, r = width * (index + 1) // 8, height * (index % 3 + 1) // 4, width // 12
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(200 - 30 * index, 40 * index, 120))
        draw.line((0, height * index // 6, width, height * index // 6), fill=(10, 10, 10), width=max(1, width // 500))
    return image


def jpeg_file(folder: Path, width: int, height: int, orientation: int = 1) -> Path:
    path = folder / f"figure-{width}x{height}-{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    figure(width, height).save(path, format="JPEG", quality=92, exif=exif.tobytes())
    return path


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def test_the_short_side_a_transform_needs():
    assert decode_short_side(TRAIN_224) == 273  # 224 / sqrt(0.9 * 3/4): the narrowest crop of RandomResizedCrop(scale 0.9-1)
    assert decode_short_side(EVAL_224) == 224  # resize the short side to 224, then the centre crop
    assert decode_short_side(open_clip.image_transform(224, is_train=True, aug_cfg={"scale": (0.08, 1.0)})) == 915
    assert decode_short_side(ToTensor()) == 0  # no crop or resize it knows: decode in full


@pytest.mark.parametrize(("size", "decoded"), [((2048, 1536), (512, 384)), ((1024, 768), (512, 384)), ((512, 384), (512, 384)),
                                               ((4000, 300), (4000, 300)), ((1536, 2048), (384, 512))])
def test_a_jpeg_is_decoded_at_the_smallest_scale_that_keeps_the_short_side(tmp_path, size, decoded):
    path = jpeg_file(tmp_path, *size)
    assert read_rgb(path, PixelSettings(min_short_side=273)).size == decoded
    assert read_rgb(path, PixelSettings()).size == size  # without a short side: every pixel, as before


def test_a_rotated_photo_is_scaled_and_still_upright(tmp_path):
    path = jpeg_file(tmp_path, 2048, 1536, orientation=6)  # stored landscape, shown portrait
    assert read_rgb(path, PixelSettings(min_short_side=273)).size == (384, 512)


def test_the_pixel_bound_still_wins_over_the_short_side(tmp_path):
    path = jpeg_file(tmp_path, 2048, 1536)
    width, height = read_rgb(path, PixelSettings(max_pixels=100_000, min_short_side=1000)).size
    assert width * height <= 100_000


@pytest.mark.parametrize("size", [(1024, 768), (2048, 1536), (3000, 2000)])
def test_the_model_gets_the_same_crop_as_from_the_full_decode(tmp_path, size):
    path = jpeg_file(tmp_path, *size)
    full, scaled = Image.open(path).convert("RGB"), read_rgb(path, PixelSettings(min_short_side=decode_short_side(TRAIN_224)))
    factor = full.size[0] // scaled.size[0]
    assert factor > 1
    for seed in range(4):
        torch.manual_seed(seed)
        box = [value // factor * factor for value in RandomResizedCrop.get_params(full, scale=[0.9, 1.0], ratio=[3 / 4, 4 / 3])]
        crops = [F.to_tensor(F.resized_crop(image, *(value // step for value in box), [224, 224], InterpolationMode.BICUBIC,
                                            antialias=True)) for image, step in ((full, 1), (scaled, factor))]
        assert psnr(*crops) >= 35


class RecordingCrop(RandomResizedCrop):
    """open_clip's train crop, noting the size of every image it is handed (what the reader decoded)."""

    seen: list[tuple[int, int]] = []

    def forward(self, img):
        RecordingCrop.seen.append(img.size)
        return super().forward(img)


@pytest.mark.parametrize("scaled", [True, False])
def test_a_ranks_csv_and_shard_datasets_decode_for_their_transform(tmp_path, scaled):
    from open_clip_train.params import parse_args

    from biomedclip_cli.rank.patches import read_data_as_bmclip

    image = jpeg_file(tmp_path, 2048, 1536)
    csv = tmp_path / "train.csv"
    csv.write_text(f"filepath,caption\n{image},a chest radiograph\n{image},an axial CT slice\n")
    with ShardWriter(tmp_path / "shards") as writer:
        for index in range(2):
            writer.write(f"sample{index}", jpeg_bytes(figure(2048, 1536)), "a fluorescence micrograph",
                         {"image_primary_label": ["Microscopy"]})
    transform = Compose([RecordingCrop(224, scale=(0.9, 1.0), interpolation=InterpolationMode.BICUBIC), ToTensor()])
    read_data_as_bmclip(PixelSettings(), scaled)
    from open_clip_train.data import get_data  # as bench-data does: after the patches
    for data in (["--train-data", str(csv), "--dataset-type", "csv", "--csv-separator", ",", "--csv-caption-key", "caption"],
                 ["--train-data", str(tmp_path / "shards" / "000000.tar"), "--dataset-type", "webdataset", "--train-num-samples", "2"]):
        RecordingCrop.seen = []
        args = parse_args([*data, "--batch-size", "1", "--workers", "0", "--model", "bmclip-tiny"])
        args.distributed, args.world_size, args.rank = False, 1, 0
        loader = get_data(args, (transform, transform), epoch=0, tokenizer=open_clip.get_tokenizer("RN50"))["train"].dataloader
        next(iter(loader))
        assert set(RecordingCrop.seen) == {(512, 384) if scaled else (2048, 1536)}, data[1]
