"""`bmclip eval`: zero-shot accuracy of a model or checkpoint on your own labelled images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.problems import ProblemFound

EPILOG = "Example:\n\n  bmclip eval --model bmclip-tiny --checkpoint demo-run/logs/demo --data demo-run/data/heldout.csv --label-column label"


def evaluate(
    model: Annotated[str, typer.Option(help="open_clip model name the checkpoint was trained with.")],
    data: Annotated[Path, typer.Option(help="CSV of images and labels.", metavar="CSV")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="Run folder (its newest checkpoint) or checkpoint file; omit for an untrained model.")] = None,
    image_column: Annotated[str, typer.Option(help="Column of image paths.")] = "filepath",
    label_column: Annotated[str, typer.Option(help="Column of class labels; the class names are its distinct values.")] = "label",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Zero-shot classification: each image gets the class whose prompts ('a {label}.', ...) its embedding is closest to."""
    from biomedclip_cli.evaluation import read_labelled_images, resolve_checkpoint, zero_shot

    try:
        weights = resolve_checkpoint(checkpoint) if checkpoint else None
        images = read_labelled_images(data, image_column, label_column)
    except ProblemFound as found:
        console.fail(found.problem)
    with console.progress_bar("classifying", len(images.paths), unit="images") as advance:
        result = zero_shot(model, weights, images, batch_size=batch_size, progress=advance)
    if as_json:
        payload = {"model": model, "checkpoint": str(weights) if weights else None, "samples": result.samples,
                   "top1": result.top1, "top5": result.top5, "per_class_recall": result.per_class_recall}
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"zero-shot on {data} ({result.samples} images, {len(result.per_class_recall)} classes)", title_justify="left")
    table.add_column("class")
    table.add_column("recall", justify="right")
    for name, recall in result.per_class_recall.items():
        table.add_row(name, f"{recall:.3f}")
    table.add_row("[bold]top-1 accuracy[/]", f"[bold]{result.top1:.3f}[/]")
    if result.top5 is not None:
        table.add_row("top-5 accuracy", f"{result.top5:.3f}")
    console.out.print(table)
    console.out.print(f"checkpoint: {weights or 'none (untrained weights)'}", markup=False)
