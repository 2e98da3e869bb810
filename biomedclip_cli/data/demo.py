"""The demo dataset: synthetic figures of eight classes as a CSV and as BIOMEDICA-layout shards.

Scans are stored as radiology exports them (data/synthetic.py, Storage): a chest radiograph and a
head CT in DICOM, an abdominal CT in 16-bit TIFF, brain MRI in 16-bit PNG; microscopy and
ultrasound as 8-bit JPEG. The shards hold the same files (dcm, tif, png, jpg members).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biomedclip_cli.data.csv_writer import AtomicCsvWriter
from biomedclip_cli.data.medical_files import DicomImage, dicom_bytes, png16_bytes, tiff16_bytes
from biomedclip_cli.data.shard_writer import ShardWriter, jpeg_bytes, shard_pattern
from biomedclip_cli.data.synthetic import MODALITIES, Storage, SyntheticSample, generate

CSV_COLUMNS = ("filepath", "caption", "label")
HELDOUT_SEED_OFFSET = 1_000


@dataclass(frozen=True)
class DemoDataset:
    """Where the demo files are: training CSV and shards, held-out CSV, and the class labels."""

    train_csv: Path
    heldout_csv: Path
    shards: str
    train_samples: int
    heldout_samples: int
    labels: tuple[str, ...]


def _biomedica_metadata(sample: SyntheticSample) -> dict[str, object]:
    return {
        "image_primary_label": [sample.label],
        "image_secondary_label": [],
        "image_panel_type": "single",
        "article_title": f"Synthetic case report {sample.key}",
        "article_journal": "bmclip demo",
        "article_license": "CC0",
    }


HOUNSFIELD_SPAN, HOUNSFIELD_OFFSET = 2000.0, 1024  # drawings span -1000..1000 HU; CT stores HU + 1024
TWELVE_BITS, TIFF_SCALE = 4095, 3000
HEAD_CT = DicomImage("CT", rescale_intercept=-HOUNSFIELD_OFFSET, rescale_slope=1, window=(0, HOUNSFIELD_SPAN),
                     tags={"BodyPartExamined": "HEAD", "StudyDescription": "CT HEAD WITHOUT CONTRAST", "SliceThickness": "5"})
CHEST_RADIOGRAPH = DicomImage("DX", photometric="MONOCHROME1", window=(TWELVE_BITS / 2 + 0.5, TWELVE_BITS + 1),
                              tags={"BodyPartExamined": "CHEST", "ViewPosition": "PA", "StudyDescription": "CHEST PA"})


def figure_file(sample: SyntheticSample, radiology_formats: bool = True) -> tuple[str, bytes]:
    """The file extension and bytes a figure is stored as: its class's storage, or 8-bit JPEG for all without `radiology_formats`."""
    pixels = sample.pixels
    storage = sample.storage if radiology_formats else Storage.JPEG
    if storage is Storage.PNG16:
        return "png", png16_bytes(np.rint(pixels * TWELVE_BITS))
    if storage is Storage.TIFF16:
        return "tif", tiff16_bytes(np.rint(pixels * TIFF_SCALE))
    if storage is Storage.DICOM_CT:
        hounsfield = pixels * HOUNSFIELD_SPAN - HOUNSFIELD_SPAN / 2
        return "dcm", dicom_bytes(np.rint(hounsfield + HOUNSFIELD_OFFSET), HEAD_CT)
    if storage is Storage.DICOM_RADIOGRAPH:
        return "dcm", dicom_bytes(np.rint((1 - pixels) * TWELVE_BITS), CHEST_RADIOGRAPH)
    return "jpg", jpeg_bytes(sample.image)


def _write_split(samples: Iterable[SyntheticSample], folder: Path, csv_path: Path, shards: ShardWriter | None,
                 progress: Callable[[int], None], radiology_formats: bool) -> int:
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with AtomicCsvWriter(csv_path, CSV_COLUMNS) as writer:
        for sample in samples:
            extension, data = figure_file(sample, radiology_formats)
            image_path = image_dir / f"{sample.key}.{extension}"
            image_path.write_bytes(data)
            writer.write([str(image_path), sample.caption, sample.label])
            if shards is not None:
                shards.write(sample.key, data, sample.caption, _biomedica_metadata(sample), extension)
            written += 1
            progress(1)
    return written


def write_demo_dataset(out_dir: Path, per_class: int, heldout_per_class: int, seed: int, shard_size: int,
                       progress: Callable[[int], None] = lambda n: None, radiology_formats: bool = True) -> DemoDataset:
    """Generate training and held-out figures under `out_dir` (CSV + images; training also as shards).

    Held-out figures come from a different random stream and are never in the training CSV or shards.
    Without `radiology_formats` every figure is an 8-bit JPEG (for comparisons with plain open_clip,
    which reads neither DICOM nor 16-bit images right).
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_dir = out_dir / "shards"
    with ShardWriter(shard_dir, shard_size) as shards:
        train = _write_split(generate(per_class, seed), out_dir, out_dir / "train.csv", shards, progress, radiology_formats)
    heldout = _write_split(generate(heldout_per_class, seed + HELDOUT_SEED_OFFSET), out_dir, out_dir / "heldout.csv", None, progress,
                           radiology_formats)
    return DemoDataset(out_dir / "train.csv", out_dir / "heldout.csv", shard_pattern(shard_dir, len(shards.sizes)),
                       train, heldout, tuple(m.label for m in MODALITIES))
