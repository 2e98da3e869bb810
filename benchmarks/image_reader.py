"""Cost of bmclip's image reader (biomedclip_cli/data/pixels/) against the stock decode, one process, files on disk.

Both sides end with `.convert("RGB")`, the first step of open_clip's transform, which it applies to
whatever the dataset hands it (Pillow's lazily opened image, or the reader's decoded one).
Rows:
- 8-bit JPEG and PNG figures: the reader against Pillow's own `Image.open(p)`, what open_clip does
  (goal: no more than 2% slower);
- 16-bit PNG and TIFF CT exports: the reader (windowed) against Pillow's convert, which is wrong (it clips at
  255) but is the stock path's cost;
- DICOM CT slices, uncompressed and JPEG 2000: the reader (rescale, window) against pydicom's decode alone
  (`dcmread(p).pixel_array`), since the stock path cannot read DICOM at all.
Each row's two sides run in interleaved rounds over the same files; the table shows each side's best round.
Usage: python benchmarks/image_reader.py [--images 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biomedclip_cli.data.medical_files import DicomImage, dicom_bytes, png16_bytes, tiff16_bytes
from biomedclip_cli.data.pixels.reader import read_rgb
from biomedclip_cli.pixel_policy import PixelSettings

DISTINCT = 8
CT = DicomImage("CT", rescale_intercept=-1024, rescale_slope=1, window=(40, 400))


def figure(index: int, width: int, height: int) -> Image.Image:
    """A figure-like RGB picture: gradients and noise, which JPEG decodes like a real figure."""
    gradient = Image.linear_gradient("L").rotate(index * 23).resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    return Image.merge("RGB", (gradient, radial, Image.effect_noise((width, height), 20 + index)))


def ct_values(index: int, size: int = 512) -> np.ndarray:
    """A 12-bit CT-like slice: an elliptical body of soft tissue with bone, noise, air around."""
    ys, xs = np.mgrid[0:size, 0:size] / size * 2 - 1
    body = (xs / 0.8) ** 2 + (ys / 0.65) ** 2 <= 1
    bone = ((xs - 0.1 * np.sin(index)) ** 2 + (ys - 0.4) ** 2) <= 0.01
    rng = np.random.default_rng(index)
    return np.clip(body * 1064 + bone * 1000 + rng.normal(0, 20, (size, size)), 0, 4095).astype(np.uint16)


def encoded(kind: str, index: int) -> tuple[str, bytes]:
    """A file of one kind: its suffix and bytes."""
    if kind in ("jpeg", "jpeg-large", "png"):
        size = (2048, 1536) if kind == "jpeg-large" else (512, 384)
        buffer = io.BytesIO()
        figure(index, *size).save(buffer, format="PNG" if kind == "png" else "JPEG", quality=90)
        return ("png" if kind == "png" else "jpg"), buffer.getvalue()
    if kind == "png16":
        return "png", png16_bytes(ct_values(index))
    if kind == "tiff16":
        return "tif", tiff16_bytes(ct_values(index))
    data = dicom_bytes(ct_values(index), CT)
    if kind == "dicom-j2k":
        import pydicom
        from pydicom.uid import JPEG2000Lossless

        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.compress(JPEG2000Lossless)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
    return "dcm", data


def write_files(folder: Path, kind: str, count: int) -> list[Path]:
    distinct = [encoded(kind, index) for index in range(DISTINCT)]
    paths = []
    for index in range(count):
        suffix, data = distinct[index % DISTINCT]
        path = folder / f"{kind}-{index:05d}.{suffix}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def pillow(path: Path) -> object:
    with Image.open(path) as image:
        return image.convert("RGB")


DEFAULT_SETTINGS = PixelSettings()


def reader(path: Path) -> object:
    return read_rgb(path, DEFAULT_SETTINGS).convert("RGB")


def pydicom_decode(path: Path) -> object:
    import pydicom

    return pydicom.dcmread(path).pixel_array


def best_rates(sides: dict[str, Callable[[Path], object]], paths: list[Path], rounds: int) -> dict[str, float]:
    """Images/s of each side in its best round; each round runs every side over all paths, in turn."""
    best = {name: 0.0 for name in sides}
    for _ in range(rounds):
        for name, read in sides.items():
            start = time.perf_counter()
            for path in paths:
                read(path)
            best[name] = max(best[name], len(paths) / (time.perf_counter() - start))
    return best


ROWS = (  # kind, description, stock side's name
    ("jpeg", "8-bit JPEG figure, 512x384", "Pillow convert"),
    ("jpeg-large", "8-bit JPEG figure, 2048x1536", "Pillow convert"),
    ("png", "8-bit PNG figure, 512x384", "Pillow convert"),
    ("png16", "16-bit PNG CT export, 512x512", "Pillow convert (clips)"),
    ("tiff16", "16-bit TIFF (zlib) CT export, 512x512", "Pillow convert (clips)"),
    ("dicom", "DICOM CT, 512x512, uncompressed", "pydicom decode only"),
    ("dicom-j2k", "DICOM CT, 512x512, JPEG 2000 lossless", "pydicom decode only"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="files per row (large JPEGs: a quarter)")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"one process, best of {options.rounds} interleaved rounds")
    print("| files | stock path | stock images/s | bmclip reader images/s | reader / stock |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for kind, description, stock_name in ROWS:
            count = options.images // 4 if kind == "jpeg-large" else options.images
            paths = write_files(Path(scratch), kind, count)
            stock = pydicom_decode if kind.startswith("dicom") else pillow
            rates = best_rates({"stock": stock, "reader": reader}, paths, options.rounds)
            print(f"| {description} | {stock_name} | {rates['stock']:,.0f} | {rates['reader']:,.0f} | "
                  f"{rates['reader'] / rates['stock']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
