"""`bmclip bench-data`: can the configured data pipeline keep up with the model? Measured, with what to change."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import ConfigFileOpt, HelpAllOpt, JsonOpt, with_config_options
from biomedclip_cli.config import HELP_FIRST, OPTION_FIELDS, Precision, TrainConfig
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.problems import warning
from biomedclip_cli.rank.sample_selection import SampleSelection
from biomedclip_cli.runs.filter_counts import FilterTotals, filter_totals

EPILOG = examples(
    ("measure the data pipeline and the model of a config", "bmclip bench-data --config train.yaml"),
    ("try another number of loader processes", "bmclip bench-data --config train.yaml --workers 8 --batches 100"),
)


def bench_data(
    ctx: typer.Context,
    config_file: ConfigFileOpt = None,
    batches: Annotated[int, typer.Option(min=2, help="Batches to pull from the data loader (at most one epoch).")] = 50,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the model to time (after 2 untimed warm-up steps).")] = 5,
    as_json: JsonOpt = False,
    help_all: HelpAllOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Measure the samples/s of the configured data pipeline alone (--workers processes, --batch-size), and the model's own training rate on
    one device, and say which one is the bottleneck and what to change.

    Takes the same options and --config file as bmclip train; nothing is trained or written. The model has random weights (speed does not
    depend on them).
    """
    from biomedclip_cli.jobs import throughput
    from biomedclip_cli.jobs.training import checked_config, load_train_config
    from biomedclip_cli.models.devices import compute_device

    given = load_train_config(config_file, overrides or {}, list(ctx.args))
    resolved = checked_config(given.model_copy(update={"name": None, "resume": None}), dry_run=True)
    device = compute_device()
    if device == "cpu" and resolved.precision is not Precision.fp32:
        console.report([warning("--precision",
                                f"{resolved.precision.value} is for GPUs and none is visible, so the model is timed on the CPU",
                                "run bench-data on the training machine to compare with its GPUs")])
    args = throughput.open_clip_args(resolved, device)
    model, transforms, tokenizer = throughput.build_model(args)
    pixels = PixelSettings.of(resolved.intensity, resolved.max_pixels)
    with tempfile.TemporaryDirectory(prefix="bmclip-bench-data-") as scratch:
        selection = SampleSelection.for_run(resolved.sample_filter(), Path(scratch))
        loader = throughput.train_loader(args, transforms, tokenizer, pixels, resolved.scaled_decode, selection)
        with console.progress_bar("loading data", min(batches, loader.num_batches) * resolved.batch_size, unit="samples") as advance:
            data, first_batch = throughput.measure_data(loader, batches, advance)
        selected = filter_totals(Path(scratch)) if selection is not None else None
    with console.progress_bar(f"training steps ({device})", throughput.WARMUP_STEPS + steps, unit="steps") as advance:
        model_rate = throughput.measure_steps(model, args, first_batch, steps, advance)
    result = throughput.verdict(resolved, data, model_rate)
    if as_json:
        typer.echo(json.dumps({"data": asdict(data), "model": asdict(model_rate), "verdict": asdict(result),
                               "filter": asdict(selected) if selected is not None else None,
                               "config": {"train_data": resolved.train_data, "dataset_type": resolved.dataset_type.value,
                                          "workers": resolved.workers, "batch_size": resolved.batch_size, "model": resolved.model}},
                              indent=2))
        return
    render(resolved, data, model_rate, result, selected)


def render(config: TrainConfig, data: Any, model: Any, result: Any, selected: FilterTotals | None = None) -> None:
    """The two rates side by side, then the verdict and the advice; with a filter, what it kept of the samples the loader read."""
    from rich.table import Table

    source = Path(config.train_data).name if config.train_data else "synthetic"
    table = Table(title_justify="left", title=f"{source} ({config.dataset_type.value}), model {config.model}, batch {config.batch_size}")
    table.add_column("")
    table.add_column("samples/s", justify="right")
    table.add_column("measured on")
    table.add_row("data pipeline", f"{data.samples_per_second:,.1f}",
                  f"{data.batches} batches, {config.workers} worker{'' if config.workers == 1 else 's'}, "
                  f"first batch {data.first_batch_seconds:.2f} s, JPEGs decoded {'scaled' if config.scaled_decode else 'in full'}")
    table.add_row("model training steps", f"{model.samples_per_second:,.1f}",
                  f"{model.steps} steps on {model.device}, {config.precision.value}")
    console.out.print(table)
    if selected is not None:
        console.out.print(f"--where {selected.described()} (samples/s counts the kept ones)", markup=False, highlight=False)
    colour = "yellow" if result.bottleneck == "data" else "green"
    console.out.print(f"[{colour}]{result.summary}[/]", markup=True, highlight=False)
    for line in result.advice:
        console.out.print(f"  - {line}", markup=False)


bench_data_command = with_config_options(TrainConfig, OPTION_FIELDS, help_first=HELP_FIRST)(bench_data)
