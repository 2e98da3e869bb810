"""`bmclip init`: a commented train config to start from, for a named situation or from a run already made."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from pydantic import BaseModel

from biomedclip_cli import console
from biomedclip_cli.commands import completion
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import with_config_options
from biomedclip_cli.config import TrainConfig, flag
from biomedclip_cli.jobs.slurm_job import SlurmJob
from biomedclip_cli.problems import Problem, ProblemFound, error

if TYPE_CHECKING:
    from biomedclip_cli.runs.starter_configs import Scenario

INIT_FIELDS = ("train_data", "val_zeroshot", "model", "pretrained", "lora_rank", "classes", "logs", "name")
JOB_INIT_FIELDS = ("partition", "nodes", "gpus_per_node", "time", "account")
STDOUT = Path("-")
EPILOG = examples(
    ("at a terminal: asks which situation, then about your data and model", "bmclip init"),
    ("LoRA on BiomedCLIP from your CSV, without questions", "bmclip init biomedclip-lora --train-data data/train.csv --out lora.yaml"),
    ("a SLURM job of 2 nodes with 4 GPUs each", "bmclip init slurm --nodes 2 --gpus-per-node 4 --out cluster.yaml"),
    ("the config of a run you made, to start another like it", "bmclip init --from logs/run1 --out again.yaml"),
    ("check what it wrote, then train", "bmclip train -c train.yaml --dry-run && bmclip train -c train.yaml"),
)


def _scenario_names(incomplete: str) -> list[str]:
    """Shell completion of the scenario argument."""
    from biomedclip_cli.runs.starter_configs import SCENARIO_NAMES

    return [name for name in SCENARIO_NAMES if name.startswith(incomplete)]


def init(
    scenario_name: Annotated[Optional[str], typer.Argument(
        metavar="SCENARIO", show_default=False, autocompletion=_scenario_names,
        help="workstation (your CSV on this machine), slurm (a SLURM cluster), biomedclip-full, biomedclip-locked or biomedclip-lora "
             "(fine-tune BiomedCLIP: every weight, the text tower alone, LoRA adapters), or biomedica (stream a topic of BIOMEDICA). "
             "Asked at a terminal when left out.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The file to write; '-' prints it.")] = Path("train.yaml"),
    from_run: Annotated[Optional[Path], typer.Option(
        "--from", metavar="RUN_DIR", show_default=False, autocompletion=completion.run_folders,
        help="Write the resolved config of this run (its bmclip.yaml, less its name and resume) instead of a scenario's.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out when it exists.")] = False,
    no_input: Annotated[bool, typer.Option("--no-input", help="Ask nothing, even at a terminal: flags and the scenario's values.")] = False,
    job_values: dict[str, Any] | None = None,
    answers: dict[str, Any] | None = None,
) -> None:
    """Write a commented train config to start from: for a workstation run from your CSV, a SLURM cluster, fine-tuning BiomedCLIP (full,
    locked or LoRA) or streaming a topic of BIOMEDICA.

    At a terminal it asks what the flags leave open; elsewhere it takes the flags and the scenario's values. Every key is one bmclip
    train takes, under a comment with its meaning and default, and bmclip train --config FILE takes the file as it is.
    """
    from biomedclip_cli.partial_files import write_atomically
    from biomedclip_cli.runs.folder import read_run_config
    from biomedclip_cli.runs.starter_configs import (
        JOB_DEFAULTS,
        commented_yaml,
        given_keys,
        reuse_header,
        reused_config,
        scenario_header,
        starter_config,
    )

    if out != STDOUT and out.is_dir():
        raise ProblemFound(error("--out", f"'{out}' is a folder", f"name the file to write, e.g. --out {out / 'train.yaml'}"))
    if out != STDOUT and out.exists() and not force:
        raise ProblemFound(error("--out", f"'{out}' already exists", "pass --force to replace it, or another --out FILE"))
    if out != STDOUT and not out.absolute().parent.is_dir():
        raise ProblemFound(error("--out", f"folder '{out.parent}' does not exist",
                                 f"create it first (mkdir -p {out.parent}) or write elsewhere"))
    asking = sys.stdin.isatty() and not no_input
    named = Path("FILE") if out == STDOUT else out  # what the file's comments call it
    if from_run is not None:
        if scenario_name is not None:
            raise ProblemFound(error("--from", f"and the scenario '{scenario_name}' both say what to write", "pass one of them"))
        _refuse_job_values(job_values, "--from")
        config = reused_config(read_run_config(from_run), answers or {})
        text = commented_yaml(config, given_keys(config), reuse_header(from_run, named))
    else:
        scenario = _scenario(scenario_name, asking)
        if not scenario.job_asks:
            _refuse_job_values(job_values, f"the scenario '{scenario.name}'")
        answers, job_values = answers or {}, job_values or {}
        given = {**answers, **(_asked(scenario.asks, answers, scenario.settings, TrainConfig) if asking else {})}
        job = {**JOB_DEFAULTS, **job_values, **(_asked(scenario.job_asks, job_values, JOB_DEFAULTS, SlurmJob) if asking else {})}
        _check_job(job)
        config = starter_config(scenario, given)
        text = commented_yaml(config, given_keys(config), scenario_header(scenario, named, job))
    if out == STDOUT:
        sys.stdout.write(text)
        return
    write_atomically(out, text)
    console.out.print(f"bmclip: wrote {out}; check it with: bmclip train --config {shlex.quote(str(out))} --dry-run", markup=False)


def _refuse_job_values(job_values: dict[str, Any] | None, what: str) -> None:
    """Job resources are for the slurm scenario alone: given with another, they would be dropped unsaid."""
    if job_values:
        name = flag(next(iter(job_values)))
        raise ProblemFound(error(name, f"is a SLURM job's resource, and {what} writes no job", "drop it, or use: bmclip init slurm"))


def _scenario(name: str | None, asking: bool) -> Scenario:
    """The scenario named, or chosen from a numbered list at a terminal."""
    from biomedclip_cli.runs.starter_configs import SCENARIO_NAMES, SCENARIOS

    if name is None and not asking:
        raise ProblemFound(error("SCENARIO", "is missing", f"name one: bmclip init {'|'.join(SCENARIO_NAMES)} (or --from RUN_DIR)"))
    if name is None:
        for number, scenario in enumerate(SCENARIOS, 1):
            console.err.print(f"  {number}. {scenario.name:<18} {scenario.title}", markup=False, highlight=False)
        numbers = [str(number) for number in range(1, len(SCENARIOS) + 1)]
        name = _ask("Which situation (number or name)", "1", choices=[*numbers, *SCENARIO_NAMES])
        name = SCENARIOS[int(name) - 1].name if name.isdigit() else name
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise ProblemFound(error("SCENARIO", f"'{name}' is not one bmclip init knows", f"choose one of {', '.join(SCENARIO_NAMES)}"))


def _asked(names: tuple[str, ...], given: dict[str, Any], defaults: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The answers to the questions of `names` the flags left open, each with the scenario's value as its default ('' for blank);
    an answer `model` refuses for its field is said in one line and asked again."""
    from biomedclip_cli.runs.starter_configs import QUESTIONS

    asked: dict[str, Any] = {}
    for name in (name for name in names if name not in given):
        default = defaults.get(name)
        while name not in asked:
            answer = _ask(QUESTIONS[name], "" if default is None else str(default)).strip()
            refused = _value_problem(model, name, answer, "answer again") if answer else None
            if refused:
                console.print_error(refused.line())
            else:
                asked[name] = answer
    return asked


def _value_problem(model: type[BaseModel], name: str, value: Any, fix: str) -> Problem | None:
    """Why `model` refuses `value` for its field `name`, named by the field's flag, with `fix`; None when it takes it."""
    from pydantic import ValidationError

    try:
        model.model_validate({name: value})
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"])
        return error(flag(name), f"{message[0].lower()}{message[1:]} (got {value!r})", fix)
    return None


def _ask(question: str, default: str, choices: list[str] | None = None) -> str:
    """One answer typed at the terminal (Enter: `default`, shown when there is one); the end of input (Ctrl-D) refuses in one line."""
    from rich.prompt import Prompt

    try:
        return Prompt.ask(question, console=console.err, default=default, choices=choices, show_choices=False,
                          show_default=bool(default))
    except EOFError:
        raise ProblemFound(error("bmclip init", f"the input ended before an answer to '{question}'",
                                 "answer each question, or pass the values as flags with --no-input")) from None


def _check_job(job: dict[str, Any]) -> None:
    """Refuse job resources slurm-gen would refuse as values (a count that is not a whole number), naming the option."""
    from biomedclip_cli.runs.starter_configs import JOB_DEFAULTS

    for name, value in job.items():
        fix = f"e.g. {flag(name)} {JOB_DEFAULTS.get(name, '')}".rstrip()
        problem = _value_problem(SlurmJob, name, value, fix) if value not in (None, "") else None
        if problem is not None:
            raise ProblemFound(problem)


SCENARIO_DEFAULT = "the scenario's"
init_command = with_config_options(SlurmJob, JOB_INIT_FIELDS, into="job_values", default_shown=SCENARIO_DEFAULT)(
    with_config_options(TrainConfig, INIT_FIELDS, into="answers", default_shown=SCENARIO_DEFAULT)(init))
