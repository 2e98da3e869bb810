"""The program every training rank runs: bmclip's changes to open_clip (rank/patches.py), then open_clip_train.main as installed.

Started by torch.distributed.run (or srun) as `python -m biomedclip_cli.rank.worker -- [--settings JSON --] <open_clip args>`:
the run's settings for the ranks as one JSON document (rank/settings.py; absent when all are defaults), then open_clip_train's
own arguments. Before training it checks the hub access of hf:// data, takes the console (rank/console.py) and its part of a run
folder shared by several nodes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from open_clip_train import main as open_clip_main
from open_clip_train.params import parse_args
from torch.distributed.elastic.multiprocessing.errors import record

from biomedclip_cli.hub.remote_shards import check_hub_access
from biomedclip_cli.problems import Problem
from biomedclip_cli.rank.console import take_console
from biomedclip_cli.rank.error_file import RankErrorHandler, failure_record
from biomedclip_cli.rank.handover import publish_handed_over_state
from biomedclip_cli.rank.parent_death import die_with_parent
from biomedclip_cli.rank.patches import apply_rank_patches
from biomedclip_cli.rank.protocol import FAILURE_RECORD_VARIABLE
from biomedclip_cli.rank.settings import read_worker_argv
from biomedclip_cli.runs.folder import node_log_name

BAD_INPUT_EXIT_CODE = 2


def hub_access_problems(parsed: argparse.Namespace) -> list[Problem]:
    """Problems reaching the hub repos of hf:// --train-data/--val-data (as open_clip's own parser read the arguments)."""
    return [problem for option, data in (("--train-data", parsed.train_data), ("--val-data", parsed.val_data))
            if data for problem in check_hub_access(data, option)]


def take_run_folder_role(run_dir: Path) -> Path | None:
    """This rank's part in a run folder shared by several nodes; the node log it writes, if any.

    Global rank 0 writes the run state its node's bmclip process handed over (rank/handover.py).
    The first rank of every other node logs to <run>/node-K.log, so that each node leaves its own
    log in the folder and no two processes write one file.
    """
    if os.environ.get("RANK", "0") == "0":
        publish_handed_over_state(run_dir, os.environ)
    node_rank = int(os.environ.get("GROUP_RANK", "0"))
    if node_rank == 0 or os.environ.get("LOCAL_RANK", "0") != "0":
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir / node_log_name(node_rank)


def main(argv: list[str] | None = None) -> int:
    """Run open_clip_train with `argv` (default: this process's arguments) and return an exit status."""
    settings, open_clip_args = read_worker_argv(list(sys.argv[1:] if argv is None else argv))
    parsed = parse_args(open_clip_args)
    problems = hub_access_problems(parsed)
    if problems:
        print(f"bmclip: error: {problems[0].line()}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    run_dir = Path(parsed.logs) / parsed.name if parsed.name else None
    if run_dir is not None:
        take_console(run_dir, parsed.epochs, os.environ)
        os.environ[FAILURE_RECORD_VARIABLE] = str(failure_record(run_dir, int(os.environ.get("RANK", "0"))))
    node_log = take_run_folder_role(run_dir) if run_dir is not None else None
    apply_rank_patches(settings, run_dir, node_log, parsed.train_num_samples)
    try:
        result = open_clip_main.main(open_clip_args)
    except Exception:
        logging.exception(f"bmclip: rank {os.environ.get('RANK', '0')} failed")
        raise
    return 1 if result == -1 else 0


if __name__ == "__main__":
    # torchrun starts each rank in a session of its own, where nothing would stop it if the launcher were killed.
    die_with_parent(signal.SIGKILL)
    sys.exit(record(main, error_handler=RankErrorHandler())())
