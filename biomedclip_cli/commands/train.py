"""`bmclip train`: a validated config becomes an open_clip_train run launched through torch.distributed.run."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import ConfigFileOpt, DryRunOpt, HelpAllOpt, VerboseOpt, with_config_options
from biomedclip_cli.config import HELP_FIRST, OPTION_FIELDS, TrainConfig
from biomedclip_cli.hub.biomedica import shortcut_help

EPILOG = examples(
    ("check everything and print the command, run nothing", "bmclip train --train-data data/train.csv --model ViT-B-32 --dry-run"),
    ("the whole config the run would record, to edit and reuse with --config",
     "bmclip train --train-data data/train.csv --print-config > train.yaml"),
    ("the demo's config, for longer", "bmclip train --config examples/demo.yaml --epochs 5"),
    ("stream BIOMEDICA (accept its terms, run `hf auth login` first)",
     "bmclip train --train-data biomedica:commercial --pretrained openai"),
    ("an open_clip flag without a bmclip option goes after --", "bmclip train --config train.yaml -- --grad-clip-norm 1.0"),
    ("run it again after any failure: it continues", "bmclip train --config train.yaml --name run1 --resume auto"),
    ("on each of 2 nodes; each gives up after 15 minutes without the other",
     "bmclip train --config train.yaml --nnodes 2 \\\n    --rdzv-endpoint node001:29400 --rdzv-timeout 900"),
    ("skip at most 100 unreadable figures; show open_clip's own log lines",
     "bmclip train --config train.yaml --max-bad-samples 100 --verbose"),
    ("LoRA on a BiomedCLIP copy on disk; zero-shot each epoch, keep the best",
     "bmclip train --model local-dir:/models/biomedclip --lora-rank 8 \\\n"
     "    --train-data train.csv --val-zeroshot val.csv --keep-best zeroshot-top1"),
    before=shortcut_help(),
)


def train(
    ctx: typer.Context,
    config_file: ConfigFileOpt = None,
    dry_run: DryRunOpt = False,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="Check everything and print the resolved config the run would record (its bmclip.yaml, every default "
                               "included) as YAML that --config takes; run nothing.")] = False,
    verbose: VerboseOpt = False,
    help_all: HelpAllOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Train a CLIP model with open_clip_train, on one machine or several (torch.distributed.run).

    Every option can also sit in the --config YAML file. Problems with the data, the model or the
    hardware are reported before anything starts.
    """
    from biomedclip_cli.jobs.training import announce_defaults, launch_and_summarise, load_train_config, prepared_launch, said_finished
    from biomedclip_cli.runs.folder import run_config_text

    given = load_train_config(config_file, overrides or {}, list(ctx.args))
    plan = prepared_launch(given, dry_run=dry_run or print_config)
    if print_config:
        sys.stdout.write(run_config_text(plan.config))
        return
    if said_finished(plan.config, dry_run=dry_run):
        return
    if dry_run:
        sys.stdout.write(plan.launch.shell_line() + "\n")
        return
    announce_defaults(given, plan.config)
    raise typer.Exit(launch_and_summarise(plan, verbose=verbose))


train_command = with_config_options(TrainConfig, OPTION_FIELDS, help_first=HELP_FIRST)(train)
