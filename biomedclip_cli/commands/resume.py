"""`bmclip resume RUN_DIR`: continue a stopped run from its newest complete checkpoint, nothing else needed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.config_options import DryRunOpt
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.problems import ProblemFound

EPILOG = examples(
    ("continue a stopped run", "bmclip resume logs/vit-b-32-biomedica"),
    ("train a finished run longer", "bmclip resume logs/vit-b-32-biomedica --epochs 40"),
    ("the command it would run on 4 processes, run nothing", "bmclip resume logs/vit-b-32-biomedica --nproc-per-node 4 --dry-run"),
)


def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run folder <logs>/<name> (bmclip runs lists them).", metavar="RUN_DIR", show_default=False)],
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Train to this many epochs in all (extends a finished run).", show_default=False)] = None,
    total_samples: Annotated[Optional[int], typer.Option(
        min=1, help="Train on this many samples in all (runs with --checkpoint-every-samples).", show_default=False)] = None,
    nproc_per_node: Annotated[Optional[int], typer.Option(min=1, help="Training processes per node.", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Batch size per process (changes the schedule).", show_default=False)] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Continue a stopped run from its newest complete checkpoint, with the settings it was launched with.

    Settings come from RUN_DIR/bmclip.yaml; relative paths in it resolve from the folder the run was launched in. Checkpoints are loaded newest first, and a truncated or corrupt one is skipped with a warning. A finished run is left alone unless --epochs extends it.
    """
    from biomedclip_cli.jobs.training import exit_if_finished, launch_and_summarise, prepared_launch
    from biomedclip_cli.runs.resuming import plan_resume

    overrides: dict[str, Any] = {name: value for name, value in
                                 {"epochs": epochs, "total_samples": total_samples, "nproc_per_node": nproc_per_node,
                                  "batch_size": batch_size}.items() if value is not None}
    try:
        plan = plan_resume(run_dir, overrides)
    except ProblemFound as found:
        console.fail(found.problem)
    console.report(plan.problems)
    assert plan.config is not None
    exit_if_finished(plan.config, dry_run=dry_run, run_dir=run_dir, cwd=plan.launch_dir)
    resolved, command = prepared_launch(plan.config, dry_run=dry_run, cwd=plan.launch_dir)
    if dry_run:
        sys.stdout.write(command.shell_line() + "\n")
        return
    console.err.print(f"bmclip: resuming from {resolved.resume}", markup=False)
    raise typer.Exit(launch_and_summarise(resolved, command))
