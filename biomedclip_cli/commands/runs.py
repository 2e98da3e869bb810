"""`bmclip runs [LOGS_DIR]`: a table of the runs under a logs folder, to find what to resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import JsonOpt
from biomedclip_cli.problems import ProblemFound, error

EPILOG = examples(
    ("the runs under ./logs", "bmclip runs"),
    ("the runs under another folder, as JSON", "bmclip runs /scratch/logs --json"),
)


def runs(
    logs_dir: Annotated[Path, typer.Argument(help="The --logs folder that holds the run folders.", metavar="LOGS_DIR")] = Path("logs"),
    as_json: JsonOpt = False,
) -> None:
    """List the runs under LOGS_DIR: model, epochs done, last checkpoint, status (running, finished, failed) and last loss.

    A run whose training diverged shows its last loss as nan or inf (null in --json).

    A failed run continues with: bmclip resume LOGS_DIR/NAME.
    """
    from biomedclip_cli.runs.status import FAILED, FINISHED, RUNNING, list_runs

    if not logs_dir.is_dir():
        raise ProblemFound(error(str(logs_dir), "is not a folder", "pass the --logs folder of your runs (default: ./logs)"))
    found = list_runs(logs_dir)
    if as_json:
        payload = [{"name": r.name, "folder": str(r.folder), "model": r.model, "epochs_done": r.epochs_done, "epochs_total": r.epochs_total,
                    "last_checkpoint": str(r.last_checkpoint) if r.last_checkpoint else None, "status": r.status, "detail": r.detail,
                    "last_loss": r.last_loss if r.last_loss is not None and math.isfinite(r.last_loss) else None} for r in found]
        typer.echo(json.dumps(payload, indent=2))
        return
    if not found:
        console.out.print(f"no runs in {logs_dir}", markup=False)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"runs in {logs_dir}", title_justify="left")
    right = ("epochs", "last loss")
    for column in ("name", "model", "epochs", "last checkpoint", "status", "last loss"):
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for r in found:
        status = Text(r.status, style={RUNNING: "cyan", FINISHED: "green", FAILED: "red"}[r.status])
        if r.detail:
            status.append(f" ({r.detail})", style="dim")
        table.add_row(Text(r.name), Text(r.model), f"{r.epochs_done}/{r.epochs_total or '?'}",
                      Text(r.last_checkpoint.name if r.last_checkpoint else "none"), status,
                      f"{r.last_loss:.4f}" if r.last_loss is not None else "-")
    console.out.print(table)
