"""`bmclip env-check`: the PyTorch to install for this driver and GPUs, and every mismatch once it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import JsonOpt
from biomedclip_cli.problems import ProblemFound, error

if TYPE_CHECKING:
    from biomedclip_cli.envinfo.environment import Environment
    from biomedclip_cli.envinfo.policy import Pick

EPILOG = examples(
    ("before installing PyTorch: the pip command for this machine", "bmclip env-check"),
    ("in a job script: exit status 1 when a check fails", "bmclip env-check --json > env.json && sbatch train.sh"),
)

FAILED_EXIT_CODE = 1
STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def env_check(
    logs: Annotated[Path, typer.Option(
        help="Folder the run folders will go in (train's --logs); its free disk space is checked.")] = Path("./logs"),
    as_json: JsonOpt = False,
) -> None:
    """Read the NVIDIA driver and GPUs (nvidia-smi), name the exact PyTorch install command for them, and once PyTorch is installed check
    torch, torchvision, the GPUs, NCCL, open_clip, webdataset, disk space and the Hugging Face token.

    Works without PyTorch, without a GPU and without nvidia-smi.

    The build is chosen from the compatibility table shipped with bmclip (its date is printed):

    1. keep the builds whose GPU architectures cover every GPU found (sm_Xy code runs on compute capability X.z, z >= y);

    2. take the highest CUDA build not newer than the CUDA version the driver reports (an older CUDA major is fine) and the newest PyTorch
       release published for it;

    3. if none qualifies, take the highest build of the driver's CUDA major whose minor-version-compatibility driver floor the driver meets,
       and say that it relies on it;

    4. no GPU, or no usable nvidia-smi: the CPU build.

    A newer release that would also run through CUDA minor-version compatibility is shown as a second, labelled option.

    Exit status: 0 when no check fails (warnings allowed), 1 when a check fails, 2 for bad usage.
    """
    from biomedclip_cli.envinfo.environment import examine

    if logs.exists() and not logs.is_dir():
        raise ProblemFound(error("--logs", f"'{logs}' is a file, not a folder", "give the folder that will hold the run folders"))
    found = examine(logs)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    else:
        _render(found)
    if found.failed:
        raise typer.Exit(FAILED_EXIT_CODE)


def _render(found: Environment) -> None:
    """The report a person reads at a glance: GPUs, the install command(s), then one line per check."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = console.out
    driver = found.driver
    out.print(f"bmclip env-check: compatibility table of {found.table_date}, Python {found.python}", style="bold", markup=False)
    if driver.gpus:
        cuda = ".".join(map(str, driver.cuda_version)) if driver.cuda_version else "unknown"
        gpus = Table(title=f"driver {driver.driver_version}, CUDA {cuda}", title_justify="left")
        for column in ("GPU", "name", "arch", "memory"):
            gpus.add_column(column)
        for gpu in driver.gpus:
            gpus.add_row(str(gpu.index), Text(gpu.name), gpu.arch or "not reported", f"{gpu.memory_mib} MiB" if gpu.memory_mib else "?")
        out.print(gpus)
    advice = found.advice
    out.print("\nInstall PyTorch with:", style="bold", markup=False)
    _render_pick(advice.pick)
    if advice.alternative:
        out.print("\nNewer option, relying on CUDA minor-version compatibility:", style="bold", markup=False)
        _render_pick(advice.alternative)
    for note in advice.notes:
        out.print(f"note: {note}", markup=False)
    out.print()
    checks = Table(title="Checks", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    checks.add_column("status")
    checks.add_column("check", no_wrap=True)
    checks.add_column("what was found (and the fix)", overflow="fold")
    for check in found.checks:
        detail = Text(check.detail)
        if check.fix:
            detail.append(f"\nfix: {check.fix}", style="cyan")
        checks.add_row(Text(check.status.value, style=STATUS_STYLE[check.status.value]), check.name, detail)
    out.print(checks)


def _render_pick(pick: Pick) -> None:
    """One install choice: the command on a line of its own (copy-pasteable), then why and which Pythons."""
    console.out.print(f"  {pick.command}", markup=False)
    console.out.print(f"  why: {pick.reason}", markup=False, style="dim")
    console.out.print(f"  Python versions with wheels of torch {pick.release.torch}: {pick.release.python_range()}", markup=False,
                      style="dim")
