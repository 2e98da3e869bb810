"""A command's `--help` page laid out for narrow terminals: every option on one line of names and metavar, its description in a
column at least DESCRIPTION_MIN characters wide beside it (below it when the names are too long), never cut.

Typer's rich help gives each of names, negative names, metavar and help a table column sized by rich, which at 80 columns can
leave a description 17 characters wide and cut long metavars. This page keeps Typer's look (usage, the command's paragraphs,
one panel per `rich_help_panel`, the epilog) and shows each option compactly: a boolean pair as `--[no-]name`, a choice as a
short metavar with its choices in the description, a range and a default in words after it.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

DESCRIPTION_MIN = 36
NAMES_MAX = 38  # the widest names column; wider names put their description on the lines below
GAP = 2
PANEL_FRAME = 4  # a panel's border and padding, both sides
ARGUMENTS_PANEL = "Arguments"
OPTIONS_PANEL = "Options"
NAME_STYLE = "bold cyan"
METAVAR_STYLE = "bold yellow"
NOTE_STYLE = "dim"
METAVAR_OF_TYPE: dict[Any, str] = {int: "INT", float: "FLOAT", str: "TEXT", Path: "PATH"}
CHOICE_METAVAR = "NAME"
COMMANDS_PANEL = "Commands"
Parameter = TyperOption | TyperArgument
Entry = tuple[Text, Text]  # a row of a panel: what to type, what it does


class HelpPageCommand(TyperCommand):
    """A Typer command whose --help is the compact page of this module."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Print the help page (as Typer's rich help does, straight to the terminal; the formatter goes unused). `ctx` is Typer's
        Context, typed Any as the vendored click's base method declares it."""
        _print_page(self, ctx, [])


class HelpPageGroup(TyperGroup):
    """The Typer app's group, whose --help is this module's page with a panel of the commands after its options."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Print the help page, each command with the first paragraph of its help."""
        commands = [(name, command) for name in self.list_commands(ctx) if (command := self.get_command(ctx, name)) and not command.hidden]
        entries = [(Text(name, style=NAME_STYLE), Text.from_markup((command.help or "").split("\n\n")[0].replace("\n", " ")))
                   for name, command in commands]
        _print_page(self, ctx, [(COMMANDS_PANEL, entries)])


def _print_page(command: TyperCommand | TyperGroup, ctx: typer.Context, more_panels: list[tuple[str, list[Entry]]]) -> None:
    """Usage, the command's paragraphs, a panel per group of parameters, `more_panels`, the epilog."""
    console = Console(width=_terminal_width(), highlight=False)
    console.print(Padding(Text(command.get_usage(ctx), style="bold"), 1))
    if command.help:
        console.print(Padding(_command_text(command.help), (0, 1, 1, 1)))
    shown = [param for param in command.get_params(ctx) if isinstance(param, (TyperOption, TyperArgument))]
    panels = [(name, [(_names(param), _description(param, ctx)) for param in params]) for name, params in _panels(shown)]
    for name, entries in (panel for panel in [*panels, *more_panels] if panel[1]):
        console.print(Panel(Group(*_rows(entries, console.width - PANEL_FRAME)), title=name, title_align="left", border_style="dim"))
    if command.epilog:
        console.print(Padding(Text.from_markup(command.epilog), 1))


def _terminal_width() -> int | None:
    """The width Typer's help uses: TERMINAL_WIDTH when set, else the terminal's (COLUMNS, then 80 off a terminal)."""
    width = os.environ.get("TERMINAL_WIDTH", "")
    return int(width) if width.isdigit() else None


def _command_text(help_text: str) -> Text:
    """The command's paragraphs: the first as written, the rest dim, one blank line between them."""
    first, *rest = help_text.split("\n\n")
    text = Text.from_markup(first.replace("\n", " "))
    for paragraph in rest:
        text.append("\n\n")
        text.append_text(Text.from_markup(paragraph.replace("\n", " "), style=NOTE_STYLE))
    return text


def _panels(params: Iterable[Parameter]) -> Iterator[tuple[str, list[Parameter]]]:
    """The shown parameters by panel: arguments first, then the unnamed options, then each named panel in order of appearance."""
    panels: dict[str, list[Parameter]] = {ARGUMENTS_PANEL: [], OPTIONS_PANEL: []}
    for param in params:
        if getattr(param, "hidden", False):
            continue
        default = ARGUMENTS_PANEL if param.param_type_name == "argument" else OPTIONS_PANEL
        panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(param)
    yield from ((name, shown) for name, shown in panels.items() if shown)


def _rows(entries: list[Entry], inner_width: int) -> Iterator[Text]:
    """One entry per row: its names padded to the panel's names column, its description wrapped beside (or below) them."""
    column = max(0, min(max(len(names) for names, _ in entries), NAMES_MAX, inner_width - GAP - DESCRIPTION_MIN))
    description_width = max(1, inner_width - column - GAP)  # at least DESCRIPTION_MIN, on a terminal of 44 columns or more
    console = Console(width=description_width)
    for names, description in entries:
        lines = list(description.wrap(console, description_width)) or [Text()]
        if len(names) > column:
            yield names
        else:
            yield Text.assemble(names, " " * (column - len(names) + GAP), lines.pop(0))
        for line in lines:
            yield Text.assemble(" " * (column + GAP), line)


def _names(param: Parameter) -> Text:
    """`-c, --config FILE`, `--[no-]lock-image`, `SOURCE...`: what a user types, styled as Typer styles it."""
    if param.param_type_name == "argument":
        return Text(f"{param.metavar or (param.name or '').upper()}{'...' if param.nargs != 1 else ''}", style=METAVAR_STYLE)
    short = [opt for opt in param.opts if not opt.startswith("--")]
    long = [opt for opt in param.opts if opt.startswith("--")]
    negative = getattr(param, "secondary_opts", [])
    if len(long) == 1 and negative == [f"--no-{long[0][2:]}"]:
        long, negative = [f"--[no-]{long[0][2:]}"], []
    names = Text(", ".join([*short, *long, *negative]), style=NAME_STYLE)
    metavar = _metavar(param)
    if metavar:
        names.append(" ").append(metavar, style=METAVAR_STYLE)
    return names


def _metavar(param: Parameter) -> str:
    """The word for an option's value: its own metavar, else its type's in capitals; none for a switch."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return param.metavar
    value_type = _value_type(param)
    if isinstance(value_type, type) and issubclass(value_type, Enum):
        return CHOICE_METAVAR
    return METAVAR_OF_TYPE.get(value_type, getattr(value_type, "__name__", "value").upper())


def _value_type(param: Parameter) -> Any:
    """The Python type of one value of the parameter (of each, for a repeatable one); an enum's members for a choice."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = descriptor.annotation if descriptor is not None else str
    if typing.get_origin(annotation) in (list, tuple):
        annotation = typing.get_args(annotation)[0]
    return annotation


def _description(param: Parameter, ctx: typer.Context) -> Text:
    """The help text (rich markup, as Typer reads it), then in dim and as plain text what the value may be (choices, a range),
    its default and whether it is required."""
    text = Text.from_markup(_joined(getattr(param, "help", None)))
    notes = [note for note in (_choices(param), _range(param), _default(param, ctx), "required" if param.required else "") if note]
    if notes:
        text.append((" " if text else "") + "[" + "; ".join(notes) + "]", style=NOTE_STYLE)
    return text


def _joined(help_text: str | None) -> str:
    """Help text with single line breaks as spaces and paragraphs on lines of their own."""
    return "\n".join(paragraph.replace("\n", " ").strip() for paragraph in (help_text or "").split("\n\n"))


def _choices(param: Parameter) -> str:
    """`one of a, b, c` for a choice."""
    value_type = _value_type(param)
    if isinstance(value_type, type) and issubclass(value_type, Enum):
        return "one of " + ", ".join(str(member.value) for member in value_type)
    return ""


def _range(param: Parameter) -> str:
    """A number range in words: `at least 1`, `at most 8`, `0.0 to 0.99`."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    return f"at most {high}" if high is not None else ""


def _default(param: Parameter, ctx: typer.Context) -> str:
    """`default: X`: the shown-default text when an option sets one, else its default value when shown and not a switch's off."""
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return f"default: {shown}"
    if not (shown or ctx.show_default):
        return ""
    value = param.get_default(ctx, call=False)
    if getattr(param, "is_flag", False):
        return "default: on" if value is True and getattr(param, "secondary_opts", None) else ""
    if value in (None, "", (), []) or callable(value):
        return ""
    return f"default: {_plain(value)}"


def _plain(value: Any) -> Any:
    """An enum member as its value, anything else as is."""
    return value.value if isinstance(value, Enum) else value
