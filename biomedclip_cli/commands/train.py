"""`bmclip train`: a validated config becomes an open_clip_train run launched through torch.distributed.run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.biomedica import shortcut_help
from biomedclip_cli.checks.hardware import gpus_support_bf16, installed_gpus, run_gpus
from biomedclip_cli.config import OPTION_FIELDS, Preset, TrainConfig, build_config, load_config_file
from biomedclip_cli.commands.config_options import with_config_options
from biomedclip_cli.launch import LaunchCommand, run_supervised, torchrun_command
from biomedclip_cli.openclip_args import openclip_argv
from biomedclip_cli.preflight import preflight
from biomedclip_cli.problems import ProblemFound
from biomedclip_cli.resuming import finished_epochs
from biomedclip_cli.run_folder import checkpoint_epoch, epoch_checkpoints, record_exit, train_progress, write_launch_record, write_run_config

ANNOUNCED_DEFAULTS = ("model", "batch_size", "epochs", "lr", "warmup", "precision", "nproc_per_node")

EPILOG = """Examples:

  bmclip train --train-data data/train.csv --model ViT-B-32 --pretrained openai --batch-size 256 --dry-run

  bmclip train --config examples/demo.yaml --epochs 5

  bmclip train --train-data biomedica:commercial --model ViT-B-32 --pretrained openai   (streams from the hub: accept the dataset's terms and run `hf auth login` first)

  bmclip train --config train.yaml -- --grad-clip-norm 1.0   (open_clip flags without a bmclip option go after --)

  bmclip train --config train.yaml --name run1 --resume auto   (run it again after any failure: it continues)

  bmclip train --config train.yaml --nnodes 2 --rdzv-endpoint node001:29400 --name run1   (the same command on each node; add --node-rank R for a static rendezvous)

""" + shortcut_help()

ConfigFileOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML file of train options (keys: flag names with underscores). Flags override it.",
                 show_default=False, metavar="FILE"),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Check everything, print the one-line command that would run, run nothing.")]


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

    With `cwd`, the command runs in that folder (and its dry-run line starts with `cd`).
    """
    resolved = checked_config(config, dry_run=dry_run)
    return resolved, torchrun_command(resolved, openclip_argv(resolved), cwd=str(cwd) if cwd else None)


def exit_if_finished(config: TrainConfig, *, dry_run: bool, run_dir: Path | None = None) -> None:
    """Say so and exit 0 when the checkpoint to resume from already holds every planned epoch.

    `run_dir` names the run folder as the user gave it (default: the config's). Under --dry-run the
    message goes to stderr, since stdout holds only a command line (and there is none).
    """
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
    """Write the run folder's bmclip.yaml and launch.json, run the training, print one summary, and return the exit status."""
    write_run_config(config)
    write_launch_record(config.run_dir(), Path(command.cwd or Path.cwd()).resolve())
    console.err.print(f"bmclip: launching {config.nproc_per_node} process(es): {command.shell_line()}", markup=False)
    status = run_supervised(command)
    record_exit(config.run_dir(), status)
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


def train(
    ctx: typer.Context,
    config_file: ConfigFileOpt = None,
    dry_run: DryRunOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Train a CLIP model with open_clip_train, on one machine or several (torch.distributed.run).

    Every option can also sit in the --config YAML file. Problems with the data, the model or the
    hardware are reported before anything starts.
    """
    try:
        given = load_train_config(config_file, overrides or {}, list(ctx.args))
    except ProblemFound as found:
        console.fail(found.problem)
    resolved, command = prepared_launch(given, dry_run=dry_run)
    exit_if_finished(resolved, dry_run=dry_run)
    if dry_run:
        sys.stdout.write(command.shell_line() + "\n")
        return
    announce_defaults(given, resolved)
    raise typer.Exit(launch_and_summarise(resolved, command))


train_command = with_config_options(TrainConfig, OPTION_FIELDS)(train)
