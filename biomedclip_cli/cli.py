"""The bmclip command line: one Typer app, one command per module in commands/.

Importing this module must stay cheap: no torch, no open_clip (see benchmarks/cli_startup.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, Optional

import typer

from biomedclip_cli import __version__, console
from biomedclip_cli.commands import bench_data, demo_data, env_check, evaluate, export, models, prepare, report, resume, runs, slurm, train
from biomedclip_cli.commands.help_text import examples, reflowed_help
from biomedclip_cli.entry import INTERRUPTED_EXIT_CODE, INTERRUPTED_LINE
from biomedclip_cli.problems import Problem, ProblemFound, not_installed

DEBUG_VARIABLE = "BMCLIP_DEBUG"
PASSTHROUGH = {"allow_extra_args": True}
ROOT_EPILOG = examples(
    ("what to install here, then a tiny CLIP trained on synthetic figures", "bmclip env-check && make demo"),
    ("your own figures, checked, as a training CSV", "bmclip prepare-csv figures/ --out data/train.csv"),
    ("train on it, checking everything first", "bmclip train --train-data data/train.csv --model ViT-B-32"),
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"bmclip {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Train CLIP-style models on biomedical image-caption data (BIOMEDICA or your own figures) with OpenCLIP.

    Typical order: env-check (before installing PyTorch), prepare-csv (your figures), train (or slurm-gen on a cluster), eval, report.
    """


def _ends_cleanly_on_ctrl_c(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, with a Ctrl-C it does not handle itself (a slow preflight, a hub listing) ending it with one line and exit status 130.

    Typer would end it with status 130 and no word; a command that says more (prepare-csv) catches it first.
    """
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            _say_interrupted()
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return run


def _say_interrupted() -> None:
    console.err.print(INTERRUPTED_LINE, markup=False)


def create_app() -> typer.Typer:
    """The bmclip application with every command registered."""
    app = typer.Typer(
        name="bmclip",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="rich",
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback(epilog=ROOT_EPILOG)(_root)
    for name, module, command, passthrough in (
        ("env-check", env_check, env_check.env_check, False),
        ("list-models", models, models.list_models, False),
        ("prepare-csv", prepare, prepare.prepare_csv, False),
        ("demo-data", demo_data, demo_data.demo_data, False),
        ("train", train, train.train_command, True),
        ("resume", resume, resume.resume, False),
        ("runs", runs, runs.runs, False),
        ("slurm-gen", slurm, slurm.slurm_gen_command, True),
        ("bench-data", bench_data, bench_data.bench_data_command, True),
        ("eval", evaluate, evaluate.evaluate, False),
        ("report", report, report.report, False),
        ("export", export, export.export, False),
    ):
        app.command(name, help=reflowed_help(command), epilog=module.EPILOG, context_settings=PASSTHROUGH if passthrough else None)(command)
    for command in app.registered_commands:
        command.callback = _ends_cleanly_on_ctrl_c(command.callback) if command.callback else None
    return app


app = create_app()


def _exit_with(problem: Problem) -> NoReturn:
    try:
        console.fail(problem)
    except typer.Exit as exit_:
        raise SystemExit(exit_.exit_code) from None


def main() -> None:
    """Entry point: run the app; a problem below the commands or a module this install lacks becomes one line and exit status 2, a Ctrl-C one line and 130."""
    try:
        app(prog_name="bmclip")
    except ProblemFound as found:
        _exit_with(found.problem)
    except ModuleNotFoundError as missing:  # a base install (no [train] extra) running a command that needs torch, Pillow, ...
        _exit_with(not_installed(missing.name or str(missing)))
    except KeyboardInterrupt:
        _say_interrupted()
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        console.err.print(f"bmclip: error: {type(exc).__name__}: {exc} (set {DEBUG_VARIABLE}=1 to see the traceback)", markup=False)
        raise SystemExit(1) from None
