"""Problems found in user input, carried as values until the command line prints them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Severity(str, Enum):
    """How a problem affects the command: errors stop it, warnings are printed and it goes on."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (an option or a file), what, and how to fix it.

    `local_only` marks problems that only say something is absent from this machine (a data file,
    a checkpoint, open_clip_train itself): a job prepared here to run elsewhere may not mind them.
    """

    subject: str
    message: str
    fix: str = ""
    severity: Severity = Severity.ERROR
    local_only: bool = False

    def line(self) -> str:
        """The problem as the single line a user reads on stderr."""
        text = f"{self.subject}: {self.message}"
        return f"{text}; {self.fix}" if self.fix else text

    def as_warning(self) -> Problem:
        """The same problem downgraded to a warning (e.g. hardware checks under --dry-run)."""
        return replace(self, severity=Severity.WARNING)


def error(subject: str, message: str, fix: str = "", *, local_only: bool = False) -> Problem:
    """An error about `subject` (an option such as --train-data, or a file path); see Problem for `local_only`."""
    return Problem(subject, message, fix, Severity.ERROR, local_only)


def warning(subject: str, message: str, fix: str = "") -> Problem:
    """A warning about `subject`; the command goes on."""
    return Problem(subject, message, fix, Severity.WARNING)


def not_installed(module: str) -> Problem:
    """The error for a module (such as torch or PIL) that the command needs and this install lacks: bmclip[train] brings it."""
    return error(module.split(".")[0], "is not installed, and this command needs it", "pip install 'bmclip[train]'")


class ProblemFound(Exception):
    """Raised by lower layers when a problem makes going on impossible; the CLI turns it into exit 2."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.line())
        self.problem = problem
