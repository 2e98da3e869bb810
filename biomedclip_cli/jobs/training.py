"""The steps from a config to a finished training run, shared by train, resume, slurm-gen and bench-data.

Load the config (YAML file and typed options), preflight it for this machine, build the launch
command, stop early when the run is already finished, launch it and print its summary. A run
launched from another folder (resume) is checked and recorded as seen from that folder, since its
relative paths mean what they mean there; the current folder is the same afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from biomedclip_cli import console
from biomedclip_cli.checks.hardware import gpus_support_bf16, installed_gpus, run_gpus
from biomedclip_cli.checks.preflight import preflight
from biomedclip_cli.config import Preset, TrainConfig, build_config, load_config_file
from biomedclip_cli.launch.launcher import LaunchCommand, run_supervised, torchrun_command
from biomedclip_cli.launch.openclip_args import openclip_argv
from biomedclip_cli.runs.folder import checkpoint_epoch, epoch_checkpoints, record_exit, train_progress, write_launch_record, write_run_config
from biomedclip_cli.runs.resuming import finished_epochs

ANNOUNCED_DEFAULTS = ("model", "batch_size", "epochs", "lr", "warmup", "precision", "nproc_per_node")


@contextmanager
def working_folder(folder: Path | str | None) -> Iterator[None]:
    """Relative paths resolve from `folder` inside the block (None: the current folder); the current folder is restored after it."""
    previous = Path.cwd()
    if folder is not None:
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def load_train_config(config_file: Path | None, overrides: dict[str, Any], extra_args: list[str]) -> TrainConfig:
    """The TrainConfig from the YAML file and the typed options (raises ProblemFound on bad input)."""
    file_values = load_config_file(config_file) if config_file else {}
    return build_config(file_values, overrides, extra_args, config_file)


def checked_config(config: TrainConfig, *, dry_run: bool) -> TrainConfig:
    """Preflight the config for this machine, print its problems (exit 2 on an error) and what --preset chose; the resolved config."""
    installed = installed_gpus()
    used = run_gpus(installed, config.gpus)
    bf16 = gpus_support_bf16(used) if config.preset is not Preset.none else None
    checked = preflight(config, gpus=len(used), dry_run=dry_run, bf16=bf16, installed_gpus=len(installed))
    console.report(checked.problems)
    if checked.preset is not None:
        console.err.print(f"bmclip: {checked.preset.summary()}", markup=False)
    return checked.config


def prepared_launch(config: TrainConfig, *, dry_run: bool, cwd: Path | None = None) -> tuple[TrainConfig, LaunchCommand]:
    """Preflight the config for this machine (see checked_config) and build the launch command.

    With `cwd`, the config is checked as seen from that folder and the command runs there (its dry-run line starts with `cd`).
    """
    with working_folder(cwd):
        resolved = checked_config(config, dry_run=dry_run)
    return resolved, torchrun_command(resolved, openclip_argv(resolved), cwd=str(cwd) if cwd else None)


def exit_if_finished(config: TrainConfig, *, dry_run: bool, run_dir: Path | None = None, cwd: Path | None = None) -> None:
    """Say so and exit 0 when the checkpoint to resume from already holds every planned epoch.

    `run_dir` names the run folder as the user gave it (default: the config's); `cwd` is the folder
    the config's relative paths resolve from (default: the current one). Under --dry-run the message
    goes to stderr, since stdout holds only a command line (and there is none).
    """
    with working_folder(cwd):
        done = finished_epochs(config)
    if done is not None:
        where = console.err if dry_run else console.out
        shown = run_dir or config.run_dir()
        where.print(f"bmclip: run '{shown}' has finished: epoch {done} of {config.planned_epochs()} "
                    f"(train it longer with: bmclip resume {shown} --epochs N)", markup=False)
        raise typer.Exit(0)


def announce_defaults(given: TrainConfig, resolved: TrainConfig) -> None:
    """Say which training-shaping values the user left to bmclip, in one line."""
    defaulted = [name for name in ANNOUNCED_DEFAULTS if name not in given.model_fields_set]
    if defaulted:
        values = ", ".join(f"{name}={_shown(getattr(resolved, name))}" for name in defaulted)
        console.print_warning(f"not given, so using defaults: {values}")


def _shown(value: object) -> str:
    return str(getattr(value, "value", value))


def launch_and_summarise(config: TrainConfig, command: LaunchCommand) -> int:
    """Write the run folder's bmclip.yaml and launch.json, run the training, print one summary, and return the exit status.

    The run folder is the config's as seen from the folder the command runs in.
    """
    folder = Path(command.cwd or Path.cwd()).resolve()
    run_dir = folder / config.run_dir()
    with working_folder(folder):
        write_run_config(config)
    write_launch_record(run_dir, folder)
    console.err.print(f"bmclip: launching {config.nproc_per_node} process(es): {command.shell_line()}", markup=False)
    status = run_supervised(command)
    record_exit(run_dir, status)
    print_summary(config, status, Path(command.cwd) / config.run_dir() if command.cwd else None)
    return status


def print_summary(config: TrainConfig, status: int, run_dir: Path | None = None) -> None:
    """One summary of the run: folder, last checkpoint, epochs, loss, samples/s (lines never wrap or cut paths).

    `run_dir` names the run folder when it is not the config's, as seen from the current folder.
    """
    run_dir = run_dir or config.run_dir()
    progress = train_progress(run_dir)
    checkpoints = epoch_checkpoints(run_dir)
    rows = {"run folder": str(run_dir), "last checkpoint": str(checkpoints[-1]) if checkpoints else "none",
            "epochs done": f"{checkpoint_epoch(checkpoints[-1]) if checkpoints else 0} of {config.epochs}"}
    if progress:
        rows["final loss"] = f"{progress[-1].loss:.4f} (first logged {progress[0].loss:.4f})"
        rows["samples/s"] = f"{progress[-1].samples_per_second:.1f}"
    rows["log"] = str(run_dir / "out.log")
    title = "[green]bmclip: training finished[/]" if status == 0 else f"[red]bmclip: training stopped (exit status {status})[/]"
    console.out.print(title)
    for label, value in rows.items():
        console.out.print(f"  [bold]{label:<16}[/]", end="")
        console.out.print(value, markup=False)
