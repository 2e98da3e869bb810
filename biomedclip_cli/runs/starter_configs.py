"""Configs to start from (`bmclip init`): the train settings of a named scenario, or of a run already made, written as YAML
with a one-line comment on every key saying what it is and its default.

A scenario is a table row: fixed settings, the questions asked at a terminal (train fields, and for a SLURM cluster the job's
resources), and the commands to run next. What init writes is a validated TrainConfig's given values, so `bmclip train --config`
takes it as is; the job's resources go into the slurm-gen command in the header, since train has no key for them.
"""

from __future__ import annotations

import shlex
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomedclip_cli.config import HELP_FIRST, TrainConfig, build_config, flag, option_meta
from biomedclip_cli.models.catalog import CURATED

BIOMEDCLIP = CURATED[0].model
WORKSTATION = {"train_data": "data/train.csv", "model": "ViT-B-32", "pretrained": "openai", "batch_size": 128, "epochs": 10,
               "report_to": "tensorboard", "resume": "auto"}
FINE_TUNING = {"train_data": "data/train.csv", "model": BIOMEDCLIP, "batch_size": 64, "epochs": 10, "report_to": "tensorboard",
               "resume": "auto"}
COMMENT_MAX = 100  # a key's comment is one line: its help's first sentence, cut to this
LEFT_OUT_OF_A_REUSE = ("name", "resume")  # a reused config starts a run of its own; `bmclip resume RUN` continues the old one


@dataclass(frozen=True)
class Scenario:
    """A situation init writes a config for: its settings, what it asks at a terminal, and what to run next."""

    name: str
    title: str
    settings: Mapping[str, Any]
    asks: tuple[str, ...]
    job_asks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


SCENARIOS = (
    Scenario("workstation", "train on your own CSV on this machine's GPUs", {**WORKSTATION, "name": "workstation"},
             ("train_data", "val_zeroshot", "model", "pretrained", "name")),
    Scenario("slurm", "the same on a SLURM cluster, through slurm-gen", {**WORKSTATION, "name": "cluster", "logs": "logs"},
             ("train_data", "model", "pretrained", "logs", "name"), ("partition", "nodes", "gpus_per_node", "time"),
             ("logs must be on a file system every node sees.",)),
    Scenario("biomedclip-full", "fine-tune every weight of BiomedCLIP", {**FINE_TUNING, "name": "biomedclip-full"},
             ("train_data", "val_zeroshot", "model", "name")),
    Scenario("biomedclip-locked", "fine-tune BiomedCLIP's text tower, its image tower locked (LiT)",
             {**FINE_TUNING, "lock_image": True, "name": "biomedclip-locked"}, ("train_data", "val_zeroshot", "model", "name")),
    Scenario("biomedclip-lora", "fine-tune BiomedCLIP with LoRA adapters (a smaller GPU)",
             {**FINE_TUNING, "lora_rank": 8, "name": "biomedclip-lora"}, ("train_data", "val_zeroshot", "model", "lora_rank", "name")),
    Scenario("biomedica", "stream a topic of BIOMEDICA from the Hugging Face hub",
             {**WORKSTATION, "train_data": "biomedica:commercial", "classes": "clinical-imaging", "name": "biomedica"},
             ("train_data", "classes", "model", "pretrained", "name"),
             notes=("accept BIOMEDICA's terms on the hub and run `hf auth login` first.",)),
)
JOB_DEFAULTS: Mapping[str, Any] = {"nodes": 1, "gpus_per_node": 4}
SCENARIO_NAMES = tuple(scenario.name for scenario in SCENARIOS)
QUESTIONS = {
    "train_data": "Training data: a CSV (bmclip prepare-csv writes one), shards, or biomedica:commercial|noncommercial|other|all",
    "val_zeroshot": "A CSV of labelled held-out images to score zero-shot each epoch (blank: none)",
    "model": f"Model: an open_clip name (bmclip list-models), {BIOMEDCLIP}, or local-dir:FOLDER",
    "pretrained": "Pretrained weights: an open_clip tag or a checkpoint file (blank: none, from scratch)",
    "lora_rank": "LoRA rank",
    "classes": "BIOMEDICA classes to keep, comma-separated (blank: all)",
    "logs": "Folder for run folders, on the shared file system",
    "name": "Run name (its folder is LOGS/NAME; running the same config again continues it)",
    "partition": "SLURM partition (blank: the cluster's default)",
    "nodes": "Nodes",
    "gpus_per_node": "GPUs per node",
    "time": "Time limit, e.g. 2-00:00:00 (blank: the partition's)",
}


def starter_config(scenario: Scenario, answers: Mapping[str, Any]) -> TrainConfig:
    """The scenario's settings with the answers (train fields) over them, validated as train validates a --config file.

    A blank answer removes the setting. Raises ProblemFound naming the option, as train does.
    """
    values = {**scenario.settings, **answers}
    return build_config({}, {name: value for name, value in values.items() if value not in (None, "")}, [])


def given_keys(config: TrainConfig) -> list[str]:
    """The keys a starting config sets: those given (a scenario's settings and answers, a reused run's values, flags), in the
    config's field order."""
    return [name for name in TrainConfig.model_fields if name in config.model_fields_set]


def reused_config(run_config: TrainConfig, answers: Mapping[str, Any]) -> TrainConfig:
    """A run's config to start another like it: its values not at their defaults, less its name and resume, with the answers
    (flags) over them, validated as train validates a --config file."""
    values = run_config.model_dump(mode="json", exclude_defaults=True, exclude=set(LEFT_OUT_OF_A_REUSE))
    return build_config(values, dict(answers), [])


def commented_yaml(config: TrainConfig, keys: Sequence[str], header: Sequence[str]) -> str:
    """The config's values of `keys` as YAML, each under a comment with its meaning and default, after `header` as comments;
    then the first-run options it leaves at their defaults, commented out with an example value, to fill in."""
    import yaml

    dumped = config.model_dump(mode="json")
    values = {name: dumped[name] for name in keys if name != "extra_args" or dumped[name]}
    lines = [f"# {line}" if line else "#" for line in header]
    for name, value in values.items():
        lines += ["", f"# {_meaning(name)}", yaml.safe_dump({name: value}, sort_keys=False, allow_unicode=True).rstrip()]
    unset = [name for name in HELP_FIRST if name not in values and name not in LEFT_OUT_OF_A_REUSE]
    if unset:
        lines += ["", "# Other options a first run may want (uncomment to use; `bmclip train --help-all` lists every one):"]
    for name in unset:
        example = yaml.safe_dump({name: _example(name)}, sort_keys=False, allow_unicode=True).splitlines()
        lines += [f"# {_meaning(name)}", *(f"# {line}" for line in example)]
    return "\n".join(lines) + "\n"


def _meaning(name: str) -> str:
    """A field's help cut to one line, and its default: `Batch size per process (per GPU). Default: 64.`"""
    return f"{_first_clause(TrainConfig.model_fields[name].description or flag(name))}. Default: {_default(name)}."


def _first_clause(text: str) -> str:
    """The first sentence of a help text (a period inside parentheses, as in `e.g.`, does not end it); one longer than
    COMMENT_MAX cut at its last ', ', '; ' or ': ' before that, outside parentheses."""
    depth, end, cut = 0, len(text), 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char == "." and (index + 1 == len(text) or text[index + 1:index + 3].strip()[:1].isupper()):
            end = index
            break
        if depth == 0 and text[index:index + 2] in (", ", "; ", ": ") and index < COMMENT_MAX:
            cut = index
    sentence = text[:end].rstrip(".")
    return sentence if len(sentence) <= COMMENT_MAX or not cut else sentence[:cut]


def _example(name: str) -> Any:
    """A field's example value as its YAML value: a list for a repeatable option, the value as typed otherwise."""
    info = TrainConfig.model_fields[name]
    example = option_meta(info).example.removeprefix("'").removesuffix("'")  # as a shell takes it
    typed = TrainConfig.model_validate({name: [example] if typing.get_origin(info.annotation) is tuple else example})
    return typed.model_dump(mode="json")[name]


def _default(name: str) -> str:
    """A field's default in words: the text its option shows, else its value (`none` when unset, `on`/`off` for a switch)."""
    info = TrainConfig.model_fields[name]
    shown = option_meta(info).shown_default
    if shown is not None:
        return shown
    default = info.get_default(call_default_factory=True)
    if default in (None, "", (), []):
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(getattr(default, "value", default))


def scenario_header(scenario: Scenario, out: Path, job: Mapping[str, Any]) -> list[str]:
    """The comment lines opening a scenario's config: what it is, and the commands to check and run it."""
    config = shlex.quote(str(out))
    lines = [f"bmclip init {scenario.name}: {scenario.title}.", *scenario.notes, "", "Check it (nothing runs):",
             f"  bmclip train --config {config} --dry-run"]
    if scenario.job_asks:
        resources = " ".join(f"{flag(name)} {shlex.quote(str(value))}" for name, value in job.items() if value not in (None, ""))
        lines += ["Write the job file and submit it:", f"  bmclip slurm-gen --config {config} {resources} --out job.sbatch --submit"]
    else:
        lines += ["Train (run the same command again after any failure: it continues):", f"  bmclip train --config {config}"]
    return lines


def reuse_header(run_dir: Path, out: Path) -> list[str]:
    """The comment lines opening the config of an existing run, written to start another run like it."""
    config = shlex.quote(str(out))
    return [f"The resolved config of the run {run_dir}, to start another like it.",
            f"Left out: {', '.join(LEFT_OUT_OF_A_REUSE)} (a new run gets a folder of its own;",
            f"`bmclip resume {shlex.quote(str(run_dir))}` continues that one).",
            "", "Check it (nothing runs):", f"  bmclip train --config {config} --dry-run", "Train:", f"  bmclip train --config {config}"]
