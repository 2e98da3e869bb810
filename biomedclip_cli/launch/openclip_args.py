"""TrainConfig -> open_clip_train arguments: the only module that knows open_clip's flags."""

from __future__ import annotations

import contextlib
import io
from argparse import Namespace

from biomedclip_cli.config import OPEN_CLIP, RESUME_AUTO, TrainConfig, dataset_type_only, fields_for, flag
from biomedclip_cli.hub.paths import pin_revision
from biomedclip_cli.problems import Problem, error
from biomedclip_cli.rank.protocol import OPEN_CLIP_RESUME_LATEST

DATA_FIELDS = ("train_data", "val_data")  # pinned to --revision inside their hf:// URLs


def _value_args(name: str, value: object) -> list[str]:
    if value is None or value is False or value == "":
        return []
    if value is True:
        return [flag(name)]
    if hasattr(value, "value"):
        value = value.value
    return [flag(name), str(value)]


def openclip_argv(config: TrainConfig) -> list[str]:
    """open_clip_train arguments for a resolved config: its fields marked OPEN_CLIP (config.py), in field order, then the extra args.

    Values that do not apply to the dataset type (CSV keys for shards, resampling for CSV) are left out.
    The --revision reaches the ranks inside the hf:// data URLs (hf://datasets/<owner>/<name>@<revision>/...).
    """
    argv: list[str] = []
    for name in fields_for(OPEN_CLIP):
        if dataset_type_only(name) not in (None, config.dataset_type.value):
            continue
        value = _open_clip_value(name, getattr(config, name))
        if name in DATA_FIELDS and isinstance(value, str) and value:
            value = pin_revision(value, config.revision)
        argv += _value_args(name, value)
    return argv + list(config.extra_args)


def _open_clip_value(name: str, value: object) -> object:
    """`--resume auto` left unresolved (a command prepared away from the run folder) becomes open_clip's `latest`.

    bmclip's worker answers open_clip's `latest` lookup with the run's newest complete checkpoint,
    or none (a fresh start): what `auto` means.
    """
    return OPEN_CLIP_RESUME_LATEST if name == "resume" and value == RESUME_AUTO else value


def open_clip_flags() -> set[str]:
    """Every open_clip flag bmclip has its own option for (those must not be repeated after `--`)."""
    return {flag(name) for name in fields_for(OPEN_CLIP)}


def _abbreviated_flag(arg: str, owned: set[str], parsed: Namespace) -> str | None:
    """The bmclip-owned flag that open_clip's argparse reads `arg` as when `arg` abbreviates it (`--nam` for --name), else None.

    argparse takes any unique prefix of a flag for the flag. `parsed` is what open_clip's parser made
    of the passthrough args: it succeeded, so a prefix matched exactly one flag, and a prefix of an
    owned flag that is not itself one of open_clip's flags (its attribute in `parsed`) matched that one.
    """
    name = arg.split("=", 1)[0]
    if not name.startswith("--") or hasattr(parsed, name[2:].replace("-", "_")):
        return None
    matches = [owned_flag for owned_flag in owned if owned_flag.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def parse_with_open_clip(argv: list[str]) -> Namespace | Problem:
    """Parse arguments with open_clip_train's own parser (cheap: it imports only argparse), or say why it refuses them."""
    try:
        from open_clip_train.params import parse_args
    except ImportError:
        return error("open_clip_train", "is not installed", "pip install 'bmclip[train]'", local_only=True)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return parse_args(argv)
    except SystemExit:
        message = captured.getvalue().strip().splitlines()[-1] if captured.getvalue().strip() else "rejected"
        message = message.split("error: ", 1)[-1]
        return error("open_clip arguments", f"open_clip_train rejects them: {message}",
                     "check the flags after `--` against python -m open_clip_train.main --help")


def check_extra_args(config: TrainConfig) -> list[Problem]:
    """Problems with the passthrough args: flags bmclip owns (also abbreviated, as argparse allows), or args open_clip's parser rejects."""
    owned = open_clip_flags()
    for arg in config.extra_args:
        name = arg.split("=", 1)[0]
        if name in owned:
            return [error(name, "is a bmclip option and must not be repeated after `--`", f"pass {name} before `--`")]
    if not config.extra_args:
        return []
    parsed = parse_with_open_clip(list(config.extra_args))
    if isinstance(parsed, Problem):
        return [parsed]
    for arg in config.extra_args:
        abbreviated = _abbreviated_flag(arg, owned, parsed)
        if abbreviated is not None:
            name = arg.split("=", 1)[0]
            return [error(name, f"is read by open_clip as {abbreviated}, a bmclip option, which must not be repeated after `--`",
                          f"pass {abbreviated} before `--`")]
    return []
