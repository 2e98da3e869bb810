"""The program every training rank runs: prepare open_clip for bmclip, then call open_clip_train.main.

Started by torch.distributed.run (or srun) as `python -m biomedclip_cli.worker -- <open_clip args>`.
It changes open_clip only from the outside: it registers bmclip's model configs, teaches webdataset
to stream hf:// shards (token in a header, never on a command line) and works around what fails on
current PyTorch; open_clip_train itself runs as installed.
"""

from __future__ import annotations

import logging
import sys

import torch
from open_clip_train import main as open_clip_main
from open_clip_train.params import parse_args

from biomedclip_cli.checks.hub import check_hub_access
from biomedclip_cli.hub_stream import register_hf_scheme
from biomedclip_cli.model_configs import register_with_open_clip
from biomedclip_cli.problems import Problem

BAD_INPUT_EXIT_CODE = 2
QUIETED_LOGGERS = ("torch", "urllib3", "PIL", "httpx", "httpx2", "httpcore", "huggingface_hub")
original_setup_logging = open_clip_main.setup_logging


class CpuFriendlyDDP(torch.nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that drops CPU `device_ids`, which torch >= 2.x rejects for CPU modules.

    open_clip_train passes `device_ids=[device]` even when the device is the CPU (gloo ranks).
    """

    def __init__(self, module: torch.nn.Module, device_ids: list | None = None, *args: object, **kwargs: object) -> None:
        if device_ids and all(torch.device(d).type == "cpu" for d in device_ids):
            device_ids = None
        super().__init__(module, device_ids, *args, **kwargs)


def _setup_logging_without_library_chatter(log_file: str | None, level: int, include_host: bool = False) -> None:
    """open_clip's setup_logging, then library loggers put back to WARNING.

    open_clip sets every logger that exists to INFO, which makes torch print compiler statistics
    from every rank at exit and the HTTP client log every shard request; only open_clip's own lines
    (and bmclip's warnings about shards) belong in the training log.
    """
    original_setup_logging(log_file, level, include_host)
    for name in [*QUIETED_LOGGERS, *logging.root.manager.loggerDict]:
        if name.split(".")[0] in QUIETED_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def prepare_open_clip() -> None:
    """Register bmclip's model configs (bmclip-tiny, ...) and the hf:// scheme, install the CPU DDP shim, keep the log readable."""
    register_with_open_clip()
    register_hf_scheme()
    torch.nn.parallel.DistributedDataParallel = CpuFriendlyDDP
    open_clip_main.setup_logging = _setup_logging_without_library_chatter


def hub_access_problems(args: list[str]) -> list[Problem]:
    """Problems reaching the hub repos of hf:// --train-data/--val-data (as open_clip's own parser reads the arguments)."""
    parsed = parse_args(args)
    return [problem for option, data in (("--train-data", parsed.train_data), ("--val-data", parsed.val_data))
            if data for problem in check_hub_access(data, option)]


def main(argv: list[str] | None = None) -> int:
    """Run open_clip_train with `argv` (default: this process's arguments) and return an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    problems = hub_access_problems(args)
    if problems:
        print(f"bmclip: error: {problems[0].line()}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    prepare_open_clip()
    result = open_clip_main.main(args)
    return 1 if result == -1 else 0


if __name__ == "__main__":
    sys.exit(main())
