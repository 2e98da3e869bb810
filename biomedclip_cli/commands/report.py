"""`bmclip report RUN_DIR`: PNG plots and a one-page HTML summary of a run, finished or still going."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import RunDirArg

EPILOG = examples(("plots and a summary page: open demo-run/logs/demo/report/index.html", "bmclip report demo-run/logs/demo"))


def report(
    run_dir: RunDirArg,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the plots and index.html.", metavar="DIR",
                                                show_default="RUN_DIR/report")] = None,
) -> None:
    """Plot a run's training loss, learning rate, logit scale, samples/s and validation metrics per epoch, and write a one-page HTML summary
    (status, best checkpoint, final metrics, hardware, config).

    Reads open_clip's out.log, checkpoints/results.jsonl and TensorBoard events (when the run logged them); works while the run is still
    going. Needs matplotlib (pip install 'bmclip[report]').
    """
    from biomedclip_cli.runs.report import best_checkpoint, status_line
    from biomedclip_cli.runs.report import report as write_report

    logs, plots, summary = write_report(run_dir, out)
    best, why = best_checkpoint(logs)
    console.out.print(f"[bold]{run_dir}[/]: ", end="")
    console.out.print(status_line(logs), markup=False)
    console.out.print(f"  best checkpoint  {best or '-'} ({why})", markup=False)
    for path in plots:
        console.out.print(f"  plot             {path}", markup=False)
    console.out.print(f"  summary          {summary}", markup=False)
