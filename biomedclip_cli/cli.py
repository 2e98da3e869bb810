"""The bmclip command line: one Typer app, one command per module in commands/.

Importing this module must stay cheap: no torch, no open_clip (see benchmarks/cli_startup.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from biomedclip_cli import __version__, console
from biomedclip_cli.commands import (
    bench_data,
    completion,
    demo_data,
    env_check,
    evaluate,
    export,
    init,
    models,
    prepare,
    report,
    resume,
    runs,
    slurm,
    train,
)
from biomedclip_cli.commands.help_page import HelpPageCommand, HelpPageGroup
from biomedclip_cli.commands.help_text import examples, reflowed_help
from biomedclip_cli.console import USAGE_EXIT_CODE
from biomedclip_cli.disk_space import is_full_disk
from biomedclip_cli.entry import INTERRUPTED_EXIT_CODE, INTERRUPTED_LINE
from biomedclip_cli.problems import ProblemFound, not_installed

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
    version: Annotated[Optional[bool], typer.Option("--version", callback=_show_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Train CLIP-style models on biomedical image-caption data (BIOMEDICA or your own figures) with OpenCLIP.

    Typical order: env-check (before installing PyTorch), prepare-csv (your figures), train (or slurm-gen on a cluster), eval, report.
    """


def _known_failure(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit status of an exception bmclip knows how to say (KNOWN_FAILURES), or None for any other."""
    for kind, says in KNOWN_FAILURES:
        said = says(exc) if isinstance(exc, kind) else None
        if said is not None:
            return said
    return None


def _full_disk(exc: OSError) -> tuple[str, int] | None:
    if not is_full_disk(exc):
        return None
    written = f"'{exc.filename}'" if exc.filename else "a file"
    return f"bmclip: error: the disk is full: could not write {written}; free space on that disk and run the command again", 1


KNOWN_FAILURES: tuple[tuple[type[BaseException], Callable[[Any], tuple[str, int] | None]], ...] = (
    (ProblemFound, lambda found: (f"bmclip: error: {found.problem.line()}", USAGE_EXIT_CODE)),  # bad input: nothing launched
    (ModuleNotFoundError, lambda missing: (f"bmclip: error: {not_installed(missing.name or str(missing)).line()}", USAGE_EXIT_CODE)),
    (KeyboardInterrupt, lambda _: (INTERRUPTED_LINE, INTERRUPTED_EXIT_CODE)),
    (OSError, _full_disk),  # others are not known: they keep their traceback under BMCLIP_DEBUG
)


def _saying_known_failures(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, with a known failure (KNOWN_FAILURES) ending it with one line on stderr and its exit status.

    Applied to every command by create_app, so command bodies raise ProblemFound and never catch it; a command that says more
    about one (prepare-csv's Ctrl-C) catches it first.
    """
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except tuple(kind for kind, _ in KNOWN_FAILURES) as exc:
            known = _known_failure(exc)
            if known is None:
                raise
            line, status = known
            _say(line)
            raise typer.Exit(status) from None

    return run


def _say(line: str) -> None:
    """One failure line on stderr, the error prefix in red."""
    prefix = "bmclip: error: "
    if line.startswith(prefix):
        console.print_error(line.removeprefix(prefix))
    else:
        console.err.print(line, markup=False)


class BmclipGroup(HelpPageGroup):
    """The app's command group: its help page, and bash completion that sees a word with colons whole."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line (or answer the shell's completion request, which Typer reads here)."""
        completion.use_colon_aware_bash()
        return super().main(*args, **kwargs)


def create_app() -> typer.Typer:
    """The bmclip application with every command registered."""
    app = typer.Typer(
        name="bmclip",
        cls=BmclipGroup,
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback(epilog=ROOT_EPILOG)(_root)
    for name, module, command, passthrough in (
        ("env-check", env_check, env_check.env_check, False),
        ("list-models", models, models.list_models, False),
        ("init", init, init.init_command, False),
        ("prepare-csv", prepare, prepare.prepare_csv, False),
        ("demo-data", demo_data, demo_data.demo_data, False),
        ("train", train, train.train_command, True),
        ("resume", resume, resume.resume_command, False),
        ("runs", runs, runs.runs, False),
        ("slurm-gen", slurm, slurm.slurm_gen_command, True),
        ("bench-data", bench_data, bench_data.bench_data_command, True),
        ("eval", evaluate, evaluate.evaluate, False),
        ("report", report, report.report, False),
        ("export", export, export.export, False),
    ):
        app.command(name, cls=HelpPageCommand, help=reflowed_help(command), epilog=module.EPILOG,
                    context_settings=PASSTHROUGH if passthrough else None)(command)
    for info in app.registered_commands:
        info.callback = _saying_known_failures(info.callback) if info.callback else None
    return app


app = create_app()


def main() -> None:
    """Entry point: run the app. Known failures are said by each command (KNOWN_FAILURES); one raised outside a command (Ctrl-C
    while Typer parses) is said the same way; anything else is one line and exit status 1 (BMCLIP_DEBUG=1 shows the traceback)."""
    try:
        app(prog_name="bmclip")
    except Exception as exc:
        known = _known_failure(exc)
        if known is not None:
            _say(known[0])
            raise SystemExit(known[1]) from None
        if os.environ.get(DEBUG_VARIABLE):
            raise
        console.err.print(f"bmclip: error: {type(exc).__name__}: {exc} (set {DEBUG_VARIABLE}=1 to see the traceback)", markup=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        _say(INTERRUPTED_LINE)
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
