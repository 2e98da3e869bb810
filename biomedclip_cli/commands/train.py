"""`bmclip train`: a validated config becomes an open_clip_train run launched through torch.distributed.run."""

from __future__ import annotations

import sys
from typing import Any

import typer

from biomedclip_cli import console
from biomedclip_cli.biomedica import shortcut_help
from biomedclip_cli.commands.config_options import ConfigFileOpt, DryRunOpt, with_config_options
from biomedclip_cli.config import OPTION_FIELDS, TrainConfig
from biomedclip_cli.problems import ProblemFound

EPILOG = """Examples:

  bmclip train --train-data data/train.csv --model ViT-B-32 --pretrained openai --batch-size 256 --dry-run

  bmclip train --config examples/demo.yaml --epochs 5

  bmclip train --train-data biomedica:commercial --model ViT-B-32 --pretrained openai   (streams from the hub: accept the dataset's terms and run `hf auth login` first)

  bmclip train --config train.yaml -- --grad-clip-norm 1.0   (open_clip flags without a bmclip option go after --)

  bmclip train --config train.yaml --name run1 --resume auto   (run it again after any failure: it continues)

  bmclip train --config train.yaml --nnodes 2 --rdzv-endpoint node001:29400 --name run1   (the same command on each node; add --node-rank R for a static rendezvous)

""" + shortcut_help()


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
    from biomedclip_cli.training import announce_defaults, exit_if_finished, launch_and_summarise, load_train_config, prepared_launch

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
