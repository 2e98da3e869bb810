"""The text of `--help`: a command's docstring reflowed into paragraphs, and an epilog of examples that fit 80 columns.

Typer's rich help keeps a docstring's line breaks inside a paragraph and prints an epilog as it is
written; these functions write for that rendering, so lines break where the terminal ends.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rich.markup import escape


def reflowed_help(command: Callable[..., Any]) -> str:
    """The command's docstring with each paragraph on one line (the terminal decides where lines break), brackets shown as written."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(escape(" ".join(line.strip() for line in paragraph.splitlines())) for paragraph in paragraphs)


def examples(*cases: tuple[str, str], before: str = "") -> str:
    """An epilog of (what it does, command line) pairs: a dim comment line, then the command (longer ones continued with \\ lines)."""
    shown = [f"[dim]# {escape(what)}[/]\n{escape(command)}" for what, command in cases]
    heading = "Examples:" if len(cases) > 1 else "Example:"
    return "\n\n".join([*([before] if before else []), heading, *shown])
