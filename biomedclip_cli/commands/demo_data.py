"""`bmclip demo-data`: write the synthetic biomedical demo dataset (CSV, images, BIOMEDICA-layout shards)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.problems import ProblemFound, error

EPILOG = examples(("write the demo data, then train the demo",
                   "bmclip demo-data demo-run/data && bmclip train --config examples/demo.yaml"))


def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write into (created; must not already hold a dataset).")],
    per_class: Annotated[int, typer.Option(min=1, help="Training figures per class.")] = 400,
    heldout_per_class: Annotated[int, typer.Option(min=1, help="Held-out figures per class (never trained on).")] = 60,
    shard_size: Annotated[int, typer.Option(min=1, help="Samples per webdataset shard.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same dataset.")] = 0,
) -> None:
    """Write a small synthetic dataset of eight classes (chest X-ray, H&E histology, fluorescence microscopy, ultrasound, head CT, abdominal
    CT, T1 and T2 brain MRI) as train.csv, heldout.csv and webdataset shards.

    The scans are stored as radiology exports them: DICOM (a radiograph in MONOCHROME1, CT in Hounsfield units), 16-bit TIFF and 16-bit PNG.
    """
    from biomedclip_cli.data.demo import write_demo_dataset
    from biomedclip_cli.data.synthetic import MODALITIES

    if (out_dir / "train.csv").exists():
        raise ProblemFound(error("OUT_DIR", f"'{out_dir}' already holds a dataset (train.csv)", "pick another folder or delete it first"))
    total = (per_class + heldout_per_class) * len(MODALITIES)
    with console.progress_bar("writing figures", total, unit="images") as advance:
        dataset = write_demo_dataset(out_dir, per_class, heldout_per_class, seed, shard_size, advance)
    console.out.print(f"train CSV    {dataset.train_csv}  ({dataset.train_samples} figures, columns filepath,caption,label)", markup=False)
    console.out.print(f"train shards {dataset.shards}  (image/txt/json, sizes.json)", markup=False)
    storages = dict.fromkeys(m.storage for m in MODALITIES)
    stored = "; ".join(f"{storage.value}: " + ", ".join(m.label for m in MODALITIES if m.storage is storage) for storage in storages)
    console.out.print(f"stored as    {stored}", markup=False)
    console.out.print(f"held out     {dataset.heldout_csv}  ({dataset.heldout_samples} figures)", markup=False)
    console.out.print(f"labels       {', '.join(dataset.labels)}", markup=False)
