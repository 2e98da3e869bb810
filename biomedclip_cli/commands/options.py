"""Options several commands share, declared once, and options generated from a model's fields (TrainConfig's, SlurmJob's), so that a
field is a flag without being written twice."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from biomedclip_cli.commands import completion
from biomedclip_cli.config import flag, option_meta

OVERRIDES_PARAMETER = "overrides"

ConfigFileOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML file of train options (keys: flag names with underscores). Flags override it.",
                 show_default=False, metavar="FILE", autocompletion=completion.config_files),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything, print the one-line command that would run, run nothing.")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose",
    help="Show open_clip's own log lines as they come, instead of bmclip's progress (every rank's output is in RUN/ranks/ either way).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]
RunDirArg = Annotated[Path, typer.Argument(help="The run folder <logs>/<name> (bmclip runs lists them).", metavar="RUN_DIR",
                                           show_default=False, autocompletion=completion.run_folders)]
COMPLETERS: dict[str, Callable[[str], list[str]]] = {  # a config field's completer, by name (commands/completion.py)
    "model": completion.model_names, "train_data": completion.data_sources, "val_data": completion.data_sources,
    "val_zeroshot": completion.tables, "logs": completion.folders, "pretrained": completion.weight_files}


def _show_every_option(ctx: typer.Context, value: bool) -> None:
    """--help-all: the command's help with the options --help folds away shown too (then they are folded again)."""
    if not value or ctx.resilient_parsing:
        return
    folded = [param for param in ctx.command.params if getattr(param, "hidden", False)]
    for param in folded:
        param.hidden = False  # type: ignore[attr-defined]
    try:
        ctx.get_help()  # the help page (commands/help_page.py) prints itself
    finally:
        for param in folded:
            param.hidden = True  # type: ignore[attr-defined]
    raise typer.Exit()


HelpAllOpt = Annotated[bool, typer.Option("--help-all", is_eager=True, expose_value=False, callback=_show_every_option,
                                          help="Show every option: --help shows those a first run needs.")]


def _cli_type(annotation: Any) -> Any:
    """The type a CLI option parses to: the non-None member of `X | None`; a tuple of values as a list (a repeatable option)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = members[0]
    if typing.get_origin(annotation) is tuple:
        return list[typing.get_args(annotation)[0]]  # type: ignore[misc]
    return annotation


def _option_parameter(name: str, field: FieldInfo, default_shown: str | None = None, hidden: bool = False) -> inspect.Parameter:
    meta = option_meta(field)
    cli_type = _cli_type(field.annotation)
    declared = f"{flag(name)}/--no-{flag(name)[2:]}" if cli_type is bool else flag(name)
    shown = default_shown or meta.shown_default
    if shown is None and field.default is not False and field.default not in (None, "", ()):
        shown = "on" if field.default is True else field.default.value if isinstance(field.default, Enum) else str(field.default)
    option = typer.Option(
        declared,
        help=field.description,
        rich_help_panel=meta.panel,
        show_default=shown if shown is not None else False,
        metavar=meta.metavar,  # None: the help page names the value by its type
        hidden=hidden,
        autocompletion=COMPLETERS.get(name),
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[cli_type], option])


def with_config_options(model: type[BaseModel], fields: Iterable[str], into: str = OVERRIDES_PARAMETER,
                        default_shown: str | None = None, help_first: Collection[str] | None = None
                        ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command so it also takes one option per named field of `model`.

    The command receives the options the user typed as one dict argument named `into` (fields left out were not given), so
    that config-file values are only overridden on purpose. Decorations stack, each with its own `into`. `default_shown`
    replaces every option's default in --help (a resume's defaults are the run's own values). With `help_first`, --help shows
    only those fields' options, and the command's --help-all (HelpAllOpt) every one.
    """
    generated = [_option_parameter(name, model.model_fields[name], default_shown, hidden=help_first is not None and name not in help_first)
                 for name in fields]
    names = {p.name for p in generated}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != into]
        own_hints = typing.get_type_hints(command, include_extras=True)

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            typed = {name: kwargs.pop(name) for name in names}
            given = {name: value for name, value in typed.items() if value is not None and value != []}
            return command(**kwargs, **{into: given})

        parameters = [p.replace(annotation=own_hints.get(p.name, p.annotation)) for p in own] + generated
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__
        return wrapper

    return decorate
