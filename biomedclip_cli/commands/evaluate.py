"""`bmclip eval`: zero-shot classification and image-text retrieval of trained or pretrained weights on your own figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands import completion
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import JsonOpt

if TYPE_CHECKING:
    from biomedclip_cli.models.evaluation import Classes, EvalResult, EvalSet, Weights
    from biomedclip_cli.pixel_policy import PixelSettings

EPILOG = examples(
    ("zero-shot accuracy of a run's newest checkpoint", "bmclip eval --checkpoint demo-run/logs/demo --data heldout.csv"),
    ("the untrained start and every epoch of a run, side by side", "bmclip eval --compare demo-run/logs/demo --data heldout.csv"),
    ("open_clip's weights against your own checkpoint", "bmclip eval --model RN50 --checkpoint openai --checkpoint a.pt --data v.csv"),
    ("WiSE-FT: mix a fine-tuned run's start back in, scored on new and old data",
     "bmclip eval --checkpoint logs/ft --wise-ft 0,0.25,0.5,0.75,1 \\\n    --data new.csv --data old.csv"),
    ("the average of a run's last three checkpoints (a soup) beside each epoch",
     "bmclip eval --compare logs/ft --average 3 --data heldout.csv"),
    ("the score if 16-bit scans were clipped at 255, as plain Pillow reads them",
     "bmclip eval --checkpoint demo-run/logs/demo --data heldout.csv \\\n    --intensity clip"),
)
CONFUSION_MAX_CLASSES = 12


def evaluate(
    data: Annotated[list[Path], typer.Option(
        help="CSV of images with a label column (zero-shot) and/or a caption column (retrieval). Repeat to score several sets.",
        metavar="CSV", autocompletion=completion.tables)],
    model: Annotated[Optional[str], typer.Option(help="open_clip model name; read from the run's bmclip.yaml when a run folder is given.",
                                                 show_default=False, metavar="NAME", autocompletion=completion.model_names)] = None,
    checkpoint: Annotated[Optional[list[str]], typer.Option(
        help="Weights: a run folder (its newest checkpoint), a checkpoint file, an open_clip tag, or 'none' (untrained). "
             "Repeat to compare.",
        show_default="none", metavar="WEIGHTS", autocompletion=completion.checkpoints)] = None,
    compare: Annotated[Optional[Path], typer.Option(
        help="A run folder: evaluate its starting weights and every epoch checkpoint side by side.", metavar="RUN_DIR",
        autocompletion=completion.run_folders)] = None,
    wise_ft: Annotated[Optional[str], typer.Option(
        "--wise-ft", help="WiSE-FT: score (1-α)·start + α·run for each α listed (0 is the weights the run started from, 1 the run), "
                          "side by side on every --data, and name the best α; needs one run as --checkpoint.",
        metavar="ALPHAS", show_default=False)] = None,
    average: Annotated[Optional[str], typer.Option(
        help="Also score the uniform average (soup) of the run's last K epoch checkpoints, or of the epochs listed (2,4,6).",
        metavar="K|EPOCHS", show_default=False)] = None,
    image_column: Annotated[str, typer.Option(help="Column of image paths.")] = "filepath",
    label_column: Annotated[Optional[str], typer.Option(help="Column of class labels for zero-shot classification.",
                                                        show_default="label, if present")] = None,
    caption_column: Annotated[Optional[str], typer.Option(help="Column of captions for retrieval.",
                                                          show_default="caption, if present")] = None,
    classnames: Annotated[Optional[Path], typer.Option(help="Text file, one class per line: 'label' or 'label: name used in prompts'.",
                                                       metavar="FILE", show_default="the CSV's labels")] = None,
    templates: Annotated[Optional[Path], typer.Option(help="Text file of prompt templates, one per line with {} for the class name.",
                                                      metavar="FILE", show_default="biomedical templates")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
    workers: Annotated[int, typer.Option(min=0, help="Image-loading processes.")] = 2,
    device: Annotated[Optional[str], typer.Option(help="Device to run on, e.g. cuda:1.",
                                                  show_default="cuda if available, else cpu")] = None,
    intensity: Annotated[Optional[str], typer.Option(
        help="How images of more than 8 bits (16-bit PNG/TIFF, DICOM) map to 8 bits: auto, minmax, percentile:LOW,HIGH, "
             "window:CENTER,WIDTH or clip (see bmclip train --help).", metavar="POLICY",
        show_default="the run's own (its bmclip.yaml), else auto")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score weights on your own labelled figures: zero-shot classification (each image gets the class whose prompts,
    such as 'a {label} image.', its embedding is closest to) and image-text retrieval over the captions.

    Reports top-1/top-5 and balanced accuracy, per-class recall and the confusion matrix; retrieval Recall@1/5/10 and median rank, image to
    text and text to image.
    """
    from biomedclip_cli.models.evaluation import read_classnames, read_eval_set, read_templates
    from biomedclip_cli.runs.blends import interpolations, parse_alphas, soup
    from biomedclip_cli.runs.weights import model_of, pixels_of, run_progression, weights_named

    named = list(checkpoint or ([] if compare or wise_ft else ["none"]))
    runs = [*named, *([str(compare)] if compare else [])]
    model_name = model_of(model, runs)
    pixels = pixels_of(intensity, runs)
    alphas = parse_alphas(wise_ft) if wise_ft is not None else None
    run = _one_run(named, compare) if alphas is not None or average is not None else None
    sets = []
    for path in data:
        eval_set = read_eval_set(path, image_column, label_column, caption_column)
        sets.append((path, eval_set, read_classnames(classnames, eval_set.labels) if eval_set.labels is not None else None))
    prompt_templates = read_templates(templates)
    if alphas is not None and run is not None:
        weights = [*interpolations(run, model_name, alphas), *([soup(run, model_name, average)] if average else [])]
        scored = [(path, _run(weights, eval_set, classes, prompt_templates, pixels, device, batch_size, workers))
                  for path, eval_set, classes in sets]
        _say_wise_ft(model_name, pixels, scored, as_json)
        return
    weights = [weights_named(name, model_name) for name in named]
    if compare:
        weights += run_progression(compare, model_name)
    if average and run is not None:
        weights.append(soup(run, model_name, average))
    for path, eval_set, classes in sets:
        results = _run(weights, eval_set, classes, prompt_templates, pixels, device, batch_size, workers)
        if as_json:
            typer.echo(json.dumps(_as_json(model_name, path, pixels, results), indent=2))
            continue
        _print_results(path, results)
    if not as_json:
        console.out.print(f"images read with --intensity {pixels.intensity.describe()}", markup=False)


def _one_run(named: list[str], compare: Path | None) -> Path:
    """The one run that --wise-ft or --average blends: --compare's, else the one --checkpoint."""
    from biomedclip_cli.problems import ProblemFound, error

    if compare is not None:
        return compare
    if len(named) == 1 and Path(named[0]).exists():
        return Path(named[0])
    raise ProblemFound(error("--checkpoint", "--wise-ft and --average blend the weights of one run", "name it once: --checkpoint RUN_DIR"))


def _run(weights: list[Weights], eval_set: EvalSet, classes: Classes | None, templates: list[str], pixels: PixelSettings,
         device: str | None, batch_size: int, workers: int) -> list[EvalResult]:
    from biomedclip_cli.models.devices import compute_device
    from biomedclip_cli.models.evaluation import evaluate as evaluate_weights

    chosen = compute_device(device)
    images = len(eval_set.paths)
    with console.progress_bar(f"encoding {images} images x {len(weights)} weights", images * len(weights), unit="images") as advance:
        return [evaluate_weights(each, eval_set, classes, templates, pixels=pixels, device=chosen, batch_size=batch_size, workers=workers,
                                 progress=advance) for each in weights]


def _headline(result: EvalResult) -> tuple[str, float]:
    """The score a blend is judged by: zero-shot top-1 where the set has labels, else image-to-text Recall@1."""
    if result.zero_shot is not None:
        return "zero-shot top-1", result.zero_shot.top1
    assert result.retrieval is not None
    return "image→text R@1", result.retrieval.image_to_text.recall[1]


def _say_wise_ft(model: str, pixels: PixelSettings, scored: list[tuple[Path, list[EvalResult]]], as_json: bool) -> None:
    """One row per data set (and their mean), one column per α (and the soup), and the best α of each row."""
    from rich import box
    from rich.table import Table

    names = [result.weights.name for result in scored[0][1]]
    rows = [(str(path), *_row(results)) for path, results in scored]
    if len(rows) > 1:
        mean = [sum(row[2][index] for row in rows) / len(rows) for index in range(len(names))]
        rows.append(("mean", "", mean))
    blends = [index for index, name in enumerate(names) if name.startswith("α=")]
    best = [max(blends, key=lambda index: scores[index]) for _, _, scores in rows]
    if as_json:
        typer.echo(json.dumps({"model": model, "intensity": pixels.intensity.text(), "weights": names, "rows": [
            {"data": data, "metric": metric, "scores": scores, "best": names[chosen]}
            for (data, metric, scores), chosen in zip(rows, best, strict=True)]}, indent=2))
        return
    table = Table(title=f"WiSE-FT of {model}: α=0 is the start, α=1 the run", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("data (metric)", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("best", justify="right")
    for (data, metric, scores), chosen in zip(rows, best, strict=True):
        cells = [f"[bold]{value:.3f}[/]" if index == chosen else f"{value:.3f}" for index, value in enumerate(scores)]
        table.add_row(f"{data} ({metric})" if metric else data, *cells, names[chosen])
    console.out.print(table)
    console.out.print(f"images read with --intensity {pixels.intensity.describe()}", markup=False)


def _row(results: list[EvalResult]) -> tuple[str, list[float]]:
    metric = _headline(results[0])[0]
    return metric, [_headline(result)[1] for result in results]


def _as_json(model: str, data: Path, pixels: PixelSettings, results: list[EvalResult]) -> dict[str, object]:
    return {"model": model, "data": str(data), "intensity": pixels.intensity.text(), "results": [
        {"name": r.weights.name, "pretrained": r.weights.pretrained, "zero_shot": r.zero_shot.as_dict() if r.zero_shot else None,
         "retrieval": r.retrieval.as_dict() if r.retrieval else None} for r in results]}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_results(data: Path, results: list[EvalResult]) -> None:
    first = results[0]
    samples = first.zero_shot.samples if first.zero_shot else first.retrieval.images if first.retrieval else 0
    title = f"{data} ({samples} images)"
    if len(results) == 1:
        _print_single(title, first)
    else:
        _print_comparison(title, results)
    if first.retrieval:
        console.out.print(f"retrieval: {first.retrieval.images} images against {first.retrieval.texts} distinct captions", markup=False)
    scored = [result for result in results if result.zero_shot]
    if scored and len(scored[0].zero_shot.classnames) <= CONFUSION_MAX_CLASSES:  # type: ignore[union-attr]
        _print_confusion(max(reversed(scored), key=lambda result: result.zero_shot.top1))  # type: ignore[union-attr]
    for result in results:
        console.out.print(f"{result.weights.name}: {result.weights.model} with {result.weights.pretrained or 'its own initial weights'}",
                          markup=False)


def _print_single(title: str, result: EvalResult) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column(result.weights.name, justify="right")
    scores = result.zero_shot
    if scores:
        table.add_row("[bold]zero-shot top-1[/]", f"[bold]{_cell(scores.top1)}[/]")
        if scores.top5 is not None:
            table.add_row("zero-shot top-5", _cell(scores.top5))
        table.add_row("balanced accuracy", _cell(scores.balanced_accuracy))
        for name, count in scores.per_class_samples.items():
            table.add_row(f"  recall: {name} ({count})", _cell(scores.per_class_recall[name]))
    if result.retrieval:
        for label, direction in (("image→text", result.retrieval.image_to_text), ("text→image", result.retrieval.text_to_image)):
            for k, value in direction.recall.items():
                table.add_row(f"{label} R@{k}", _cell(value))
            table.add_row(f"{label} median rank", f"{direction.median_rank:g}")
    console.out.print(table)


def _print_comparison(title: str, results: list[EvalResult]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=title + "; per-class recall and R@10 with --json", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    columns: list[tuple[str, list[str]]] = []
    zero_shot = [r.zero_shot for r in results]
    if all(zero_shot):
        columns.append(("top-1", [_cell(z.top1) for z in zero_shot if z]))
        if all(z.top5 is not None for z in zero_shot if z):
            columns.append(("top-5", [_cell(z.top5) for z in zero_shot if z]))
        columns.append(("bal. acc", [_cell(z.balanced_accuracy) for z in zero_shot if z]))
    retrieval = [r.retrieval for r in results]
    if all(retrieval):
        for label, direction in (("i→t", "image_to_text"), ("t→i", "text_to_image")):
            scores = [getattr(r, direction) for r in retrieval]
            columns += [(f"{label} R@1", [_cell(s.recall[1]) for s in scores]), (f"{label} R@5", [_cell(s.recall[5]) for s in scores]),
                        (f"{label} med", [f"{s.median_rank:g}" for s in scores])]
    table.add_column("weights", no_wrap=True)
    for header, _ in columns:
        table.add_column(header, justify="right", min_width=5)
    for row, result in enumerate(results):
        table.add_row(result.weights.name, *[cells[row] for _, cells in columns])
    console.out.print(table)


def _print_confusion(result: EvalResult) -> None:
    from rich.table import Table

    scores = result.zero_shot
    assert scores is not None
    table = Table(title=f"confusion matrix of {result.weights.name} (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ predicted")
    for index, _ in enumerate(scores.classnames):
        table.add_column(str(index + 1), justify="right")
    for index, (name, row) in enumerate(zip(scores.classnames, scores.confusion, strict=True)):
        table.add_row(f"{index + 1} {name}",
                      *[f"[bold]{count}[/]" if i == index else (str(count) if count else "·") for i, count in enumerate(row)])
    console.out.print(table)
