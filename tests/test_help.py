"""Every command's --help at 80 columns reads well: one opening sentence, paragraphs wrapped by the terminal, an example last."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from biomedclip_cli.cli import app

WIDTH = 80
CONTENT_WIDTH = WIDTH - 2  # rich pads the help text by one column on each side
COMMANDS = sorted(typer.main.get_command(app).commands)
SENTENCE_END = re.compile(r"[.!?]\s+[A-Z]")


def help_lines(*command: str, flag: str = "--help", width: int = WIDTH) -> list[str]:
    """The lines `bmclip COMMAND --help` (or FLAG) prints in a terminal WIDTH columns wide, without trailing spaces."""
    result = CliRunner().invoke(app, [*command, flag], env={"COLUMNS": str(width), "TERMINAL_WIDTH": str(width)})
    assert result.exit_code == 0, result.output
    return [line.rstrip() for line in result.output.splitlines()]


def paragraphs(lines: list[str]) -> list[list[str]]:
    """Runs of non-blank lines outside the option panels, stripped of rich's padding."""
    found: list[list[str]] = [[]]
    in_panel = False
    for line in lines:
        if line.lstrip().startswith("╭"):
            in_panel = True
        if not in_panel and line.strip() and not line.lstrip().startswith("Usage:"):
            found[-1].append(line.strip())
        elif found[-1]:
            found.append([])
        if line.lstrip().startswith("╰"):
            in_panel = False
    return [p for p in found if p]


@pytest.mark.parametrize("command", [[], *[[name] for name in COMMANDS]], ids=lambda c: " ".join(c) or "bmclip")
def test_help_at_80_columns_starts_with_a_sentence_wraps_at_words_and_ends_with_an_example(command: list[str]):
    lines = help_lines(*command)
    assert all(len(line) <= WIDTH for line in lines)
    text = paragraphs(lines)
    opening = " ".join(text[0])
    assert opening.endswith("."), opening
    assert not SENTENCE_END.search(opening), f"the first paragraph holds more than one sentence: {opening}"
    examples_at = next(i for i, p in enumerate(text) if p[0] in ("Example:", "Examples:"))
    for paragraph in text[:examples_at]:
        for line, following in zip(paragraph, paragraph[1:], strict=False):
            assert len(line) + 1 + len(following.split()[0]) > CONTENT_WIDTH, f"a line break from the source: {line!r} / {following!r}"
    shown = [line for p in text[examples_at:] for line in p][1:]
    continued = [False, *(line.endswith(" \\") for line in shown)]
    assert shown and all(line.startswith(("# ", "bmclip ")) or after_backslash
                         for line, after_backslash in zip(shown, continued, strict=False)), \
        f"an example wraps or is not a command: {shown}"
    assert not shown[-1].startswith("# "), "the help ends with an example command"


@pytest.mark.parametrize("command", ["train", "slurm-gen", "bench-data"])
def test_the_long_commands_show_what_a_first_run_needs_and_every_option_with_help_all(command: str):
    from biomedclip_cli.config import OPTION_FIELDS

    first = help_lines(command)
    assert len(first) <= 160, f"{command} --help takes {len(first)} lines at 80 columns"
    assert "--help-all" in "\n".join(first) and "--model" in "\n".join(first) and "--hang-timeout" not in "\n".join(first)
    every = "\n".join(help_lines(command, flag="--help-all"))
    assert len(every.splitlines()) > len(first)
    hidden_by_slurm = ("gpus", "node_rank", "rdzv_endpoint", "rdzv_id", "master_port", "nnodes") if command == "slurm-gen" else ()
    assert all(shown_name(name) in every for name in OPTION_FIELDS if name not in hidden_by_slurm)
    assert help_lines(command) == first, "--help-all folds the options away again"


OPTION_ROW = re.compile(r"^│ (?P<names>[-A-Z*\[]\S*(?: \S+)*?)(?:  +(?P<description>[^\s│])| *│$)")
PANEL_LINE = re.compile(r"^│ .* │$")
DESCRIPTION_MIN = 36


def shown_name(field: str) -> str:
    """How --help names a config field's option: `--name`, or `--[no-]name` for a switch."""
    from biomedclip_cli.config import TrainConfig, flag

    annotation = TrainConfig.model_fields[field].annotation
    return f"--[no-]{flag(field)[2:]}" if annotation is bool else flag(field)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", [[name] for name in COMMANDS], ids=" ".join)
def test_every_option_shows_its_whole_name_and_metavar_and_a_description_at_least_36_columns_wide(command: list[str], width: int):
    lines = help_lines(*command, flag="--help-all" if command[0] in ("train", "slurm-gen", "bench-data") else "--help", width=width)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert "…" not in text and "<bool>" not in text and " STR " not in text
    rows = [match for line in lines if PANEL_LINE.match(line) and (match := OPTION_ROW.match(line))]
    assert rows, text
    for row in (row for row in rows if row.group("description")):
        wide = width - 2 - row.start("description")
        assert wide >= DESCRIPTION_MIN, f"a description {wide} wide: {row.string}"
    row_names = "\n".join(row.group("names") for row in rows)
    params = typer.main.get_command(app).commands[command[0]].params  # type: ignore[attr-defined]
    for param in params:
        long = [opt for opt in param.opts if opt.startswith("--")]
        if not long or (param.hidden and long[0] not in text):
            continue
        if param.secondary_opts:
            assert f"--[no-]{long[0][2:]}" in row_names and param.secondary_opts[0] not in row_names, "a switch pair shows as --[no-]NAME"
        else:
            assert re.search(rf"{re.escape(long[0])}( [A-Z]|,|$)", row_names, re.M), f"{long[0]} is not shown whole"


def test_choices_and_defaults_are_said_in_the_description_not_the_metavar_column():
    lines = help_lines("train", width=80)
    precision = next(i for i, line in enumerate(lines) if "--precision" in line)
    assert lines[precision].startswith("│ --precision NAME ")
    said = " ".join(line.strip("│ ") for line in lines[precision:precision + 3])
    assert "one of auto, amp, amp_bf16" in said and "default: auto" in said
    every = help_lines("train", flag="--help-all", width=120)
    assert any(line.startswith("│ --seed INT ") and "[default: 0]" in line for line in every), "a default of 0 is a default"
