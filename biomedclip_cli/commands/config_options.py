"""Command-line options generated from the TrainConfig fields, so a field is a flag without being written twice, and the options the training commands share."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from biomedclip_cli.config import flag, option_meta

OVERRIDES_PARAMETER = "overrides"

ConfigFileOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML file of train options (keys: flag names with underscores). Flags override it.",
                 show_default=False, metavar="FILE"),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything, print the one-line command that would run, run nothing.")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", help="Show open_clip's own log lines as they come, instead of bmclip's progress (every rank's output is in RUN/ranks/ either way).")]


def _cli_type(annotation: Any) -> type:
    """The plain type a CLI option parses to: the non-None member of `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0]
    return annotation


def _option_parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    meta = option_meta(field)
    cli_type = _cli_type(field.annotation)
    declared = f"{flag(name)}/--no-{flag(name)[2:]}" if cli_type is bool else flag(name)
    shown = meta.shown_default
    if shown is None and field.default not in (None, ""):
        shown = field.default.value if isinstance(field.default, Enum) else str(field.default)
    option = typer.Option(
        declared,
        help=field.description,
        rich_help_panel=meta.panel,
        show_default=shown if shown is not None else False,
        metavar=None if cli_type is bool or issubclass(cli_type, Enum) else cli_type.__name__.upper(),
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[cli_type], option])


def with_config_options(model: type[BaseModel], fields: Iterable[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command so it also takes one option per named field of `model`.

    The command receives the options the user typed as one dict argument, `overrides`
    (fields left out were not given), so that config-file values are only overridden on purpose.
    """
    generated = [_option_parameter(name, model.model_fields[name]) for name in fields]
    names = {p.name for p in generated}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != OVERRIDES_PARAMETER]
        own_hints = typing.get_type_hints(command, include_extras=True)

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            typed = {name: kwargs.pop(name) for name in names}
            overrides = {name: value for name, value in typed.items() if value is not None}
            return command(**kwargs, **{OVERRIDES_PARAMETER: overrides})

        parameters = [p.replace(annotation=own_hints.get(p.name, p.annotation)) for p in own] + generated
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__
        return wrapper

    return decorate
