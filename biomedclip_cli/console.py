"""Where bmclip writes: rich consoles for stdout (results) and stderr (messages: warnings, errors, progress bars)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console

from biomedclip_cli.problems import Problem, ProblemFound, Severity

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

USAGE_EXIT_CODE = 2
TO_CONSOLE = "bmclip_console"  # a log record with this extra attribute set is shown on rank 0's console as it is (rank/console.py)


def print_warning(text: str) -> None:
    """One warning line on stderr."""
    err.print("[yellow]bmclip: warning:[/] ", end="", markup=True)
    err.print(text, markup=False)


def print_error(text: str) -> None:
    """One error line on stderr."""
    err.print("[red]bmclip: error:[/] ", end="", markup=True)
    err.print(text, markup=False)


def report(problems: Iterable[Problem]) -> None:
    """Print every warning, then stop at the first error, if any (ProblemFound: the app prints it and exits 2)."""
    problems = list(problems)
    for problem in problems:
        if problem.severity is Severity.WARNING:
            print_warning(problem.line())
    for problem in problems:
        if problem.severity is Severity.ERROR:
            raise ProblemFound(problem)


@contextmanager
def progress_bar(description: str, total: int | None, unit: str = "items") -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr showing count, rate and time left; yields the function that advances it.

    With `total` None (not known in advance) it shows the count and rate without time left.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    rate = TextColumn(f"{{task.fields[rate]}} {unit}/s")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), rate, TimeRemainingColumn(),
                  console=err) as progress:
        task = progress.add_task(description, total=total, rate="-")

        def advance(count: int) -> None:
            progress.advance(task, count)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

        yield advance
