"""Decode + training transform throughput on one core: open_clip's stock path against bmclip's scaled decode, JPEG figures.

open_clip opens a CSV row's image with Pillow and hands it to its train transform
(RandomResizedCrop to the model's size, then ToTensor and Normalize); Pillow decodes the whole JPEG,
so a 2048x1536 figure costs 3.1 M pixels of decoding for a 224x224 crop. bmclip's reader decodes it
at the smallest DCT scale (1/2, 1/4, 1/8, libjpeg's `draft`) whose short side still covers the
smallest crop the transform can take at full resolution (rank/image_reading.py decode_short_side).
Rows: one per figure size; columns: images/s of each path (best of interleaved rounds, one thread),
their ratio, and the PSNR of the tensor the model gets from bmclip's path against stock's for the
same relative crop (min and mean over the files; the goal is at least 35 dB).
Usage: python benchmarks/decode_throughput.py [--images 48] [--rounds 5] [--size 224]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.rank.image_reading import decode_short_side

SIZES = ((512, 384), (1024, 768), (2048, 1536))
DISTINCT = 6


def figure(index: int, width: int, height: int) -> Image.Image:
    """A figure-like picture: a panel of smooth shapes, text-like strokes and mild noise, saved as a journal would (JPEG q90)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(index)
    base = Image.merge("RGB", [Image.linear_gradient("L").rotate(index * 37 + 60 * band).resize((width, height)) for band in range(3)])
    draw = ImageDraw.Draw(base)
    for _ in range(12):
        x, y = rng.integers(0, width), rng.integers(0, height)
        radius = int(rng.integers(width // 40, width // 8))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    for line in range(8):
        y = height * (line + 1) // 10
        draw.line((width // 10, y, width * 9 // 10, y), fill=(20, 20, 20), width=max(1, width // 400))
    noise = Image.effect_noise((width, height), 8).convert("RGB")
    return Image.blend(base, noise, 0.08)


def jpeg_files(folder: Path, width: int, height: int, count: int) -> list[Path]:
    """`count` JPEG figures of one size on disk (DISTINCT different pictures, repeated)."""
    paths = []
    for index in range(count):
        path = folder / f"figure-{width}x{height}-{index}.jpg"
        if index < DISTINCT:
            buffer = io.BytesIO()
            figure(index, width, height).save(buffer, format="JPEG", quality=90)
            path.write_bytes(buffer.getvalue())
        else:
            path.write_bytes(paths[index % DISTINCT].read_bytes())
        paths.append(path)
    return paths


def best_rate(paths: list[Path], load: Callable[[Path], torch.Tensor], rounds: int, other: Callable[[], float]) -> tuple[float, float]:
    """Images/s of `load` over the files and of `other` (the competing path), interleaved, best round of each."""
    ours, theirs = 0.0, 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for path in paths:
            load(path)
        ours = max(ours, len(paths) / (time.perf_counter() - started))
        theirs = max(theirs, other())
    return ours, theirs


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two image tensors with values in [0, 1], in dB."""
    mse = float(torch.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def same_crop_psnr(path: Path, settings: PixelSettings, size: int, seed: int) -> float:
    """PSNR between stock's and bmclip's tensor for the same crop, placed relative to each decoded image."""
    from torchvision.transforms import InterpolationMode, RandomResizedCrop
    from torchvision.transforms import functional as F

    full = Image.open(path).convert("RGB")
    scaled = read_rgb(path, settings)
    torch.manual_seed(seed)
    factor = full.size[0] // scaled.size[0]  # the DCT scale: 1, 2, 4 or 8
    box = [value // factor * factor for value in RandomResizedCrop.get_params(full, scale=[0.9, 1.0], ratio=[3 / 4, 4 / 3])]
    crops = [F.resized_crop(image, *(value // step for value in box), [size, size], InterpolationMode.BICUBIC, antialias=True)
             for image, step in ((full, 1), (scaled, factor))]  # the same pixels of the figure: the crop on the scale's grid
    return psnr(*(F.to_tensor(crop) for crop in crops))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="files per figure size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=224, help="the model's image size")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import open_clip

    transform = open_clip.image_transform(args.size, is_train=True)
    short_side = decode_short_side(transform)
    stock_settings, scaled_settings = PixelSettings(), PixelSettings(min_short_side=short_side)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, one thread; open_clip {open_clip.__version__}, "
          f"train transform at {args.size} px; bmclip decodes JPEGs with a short side of at least {short_side} px")
    print(f"{'figure':>11} | {'stock img/s':>11} | {'bmclip img/s':>12} | {'ratio':>5} | {'PSNR min':>8} | {'PSNR mean':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        for width, height in SIZES:
            paths = jpeg_files(Path(scratch), width, height, args.images)

            def stock(path: Path) -> torch.Tensor:
                return transform(Image.open(path))

            def scaled(path: Path) -> torch.Tensor:
                return transform(read_rgb(path, scaled_settings))

            def stock_round(paths: list[Path] = paths) -> float:
                started = time.perf_counter()
                for path in paths:
                    stock(path)
                return len(paths) / (time.perf_counter() - started)

            for path in paths[:2]:  # warm both paths
                stock(path), scaled(path), read_rgb(path, stock_settings)
            ours, theirs = best_rate(paths, scaled, args.rounds, stock_round)
            quality = [same_crop_psnr(path, scaled_settings, args.size, seed) for seed, path in enumerate(paths[:DISTINCT])]
            print(f"{width:>5}x{height:<5} | {theirs:>11.0f} | {ours:>12.0f} | {ours / theirs:>4.2f}x | {min(quality):>5.1f} dB | "
                  f"{sum(quality) / len(quality):>6.1f} dB")


if __name__ == "__main__":
    main()
