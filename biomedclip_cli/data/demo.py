"""The demo dataset: synthetic figures of eight classes as a CSV and as BIOMEDICA-layout shards."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from biomedclip_cli.data.csv_writer import AtomicCsvWriter
from biomedclip_cli.data.shard_writer import ShardWriter, jpeg_bytes, shard_pattern
from biomedclip_cli.data.synthetic import MODALITIES, SyntheticSample, generate

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


def _write_split(samples: Iterable[SyntheticSample], folder: Path, csv_path: Path, shards: ShardWriter | None,
                 progress: Callable[[int], None]) -> int:
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with AtomicCsvWriter(csv_path, CSV_COLUMNS) as writer:
        for sample in samples:
            image_path = image_dir / f"{sample.key}.jpg"
            jpg = jpeg_bytes(sample.image)
            image_path.write_bytes(jpg)
            writer.write([str(image_path), sample.caption, sample.label])
            if shards is not None:
                shards.write(sample.key, jpg, sample.caption, _biomedica_metadata(sample))
            written += 1
            progress(1)
    return written


def write_demo_dataset(out_dir: Path, per_class: int, heldout_per_class: int, seed: int, shard_size: int,
                       progress: Callable[[int], None] = lambda n: None) -> DemoDataset:
    """Generate training and held-out figures under `out_dir` (CSV + images; training also as shards).

    Held-out figures come from a different random stream and are never in the training CSV or shards.
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_dir = out_dir / "shards"
    with ShardWriter(shard_dir, shard_size) as shards:
        train = _write_split(generate(per_class, seed), out_dir, out_dir / "train.csv", shards, progress)
    heldout = _write_split(generate(heldout_per_class, seed + HELDOUT_SEED_OFFSET), out_dir, out_dir / "heldout.csv", None, progress)
    return DemoDataset(out_dir / "train.csv", out_dir / "heldout.csv", shard_pattern(shard_dir, len(shards.sizes)),
                       train, heldout, tuple(m.label for m in MODALITIES))
