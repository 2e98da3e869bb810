"""The program every training rank runs: prepare open_clip for bmclip, then call open_clip_train.main.

Started by torch.distributed.run (or srun) as `python -m biomedclip_cli.launch.worker -- [bmclip's worker
options --] <open_clip args>`. It changes open_clip only from the outside: it registers bmclip's
model configs, teaches webdataset to stream hf:// shards (token in a header, never on a command
line), works around what fails on current PyTorch, makes checkpoint saves atomic, answers
open_clip's resume lookup with a verified checkpoint, adds LoRA adapters to the model it builds
and scores --val-zeroshot after each epoch; open_clip_train itself runs as installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from open_clip_train import main as open_clip_main
from open_clip_train.distributed import is_master
from open_clip_train.params import parse_args
from torch.distributed.elastic.multiprocessing.errors import ErrorHandler, record

from biomedclip_cli.config import DEFAULT_MAX_BAD_SAMPLES
from biomedclip_cli.hub.remote_shards import check_hub_access
from biomedclip_cli.hub.streaming import register_hf_scheme
from biomedclip_cli.launch.handover import publish_handed_over_state
from biomedclip_cli.launch.image_reading import install_image_reader
from biomedclip_cli.launch.launch_failures import ERROR_FILE_VARIABLE
from biomedclip_cli.launch.launcher import (
    WORKER_INTENSITY,
    WORKER_KEEP_CHECKPOINTS,
    WORKER_LORA,
    WORKER_MAX_BAD_SAMPLES,
    WORKER_MAX_PIXELS,
    WORKER_ZERO_SHOT,
)
from biomedclip_cli.launch.lora_hook import checkpoint_entries, with_lora
from biomedclip_cli.launch.openclip_args import OPEN_CLIP_RESUME_LATEST
from biomedclip_cli.launch.parent_death import die_with_parent
from biomedclip_cli.launch.rank_console import take_console
from biomedclip_cli.launch.sample_guard import install_sample_guard
from biomedclip_cli.launch.zero_shot_hook import EpochHooks, ZeroShotPlan
from biomedclip_cli.models.configs import register_with_open_clip
from biomedclip_cli.models.lora import LoraSettings
from biomedclip_cli.partial_files import partial_path
from biomedclip_cli.pixel_policy import (
    DEFAULT_INTENSITY,
    DEFAULT_MAX_PIXELS,
    PixelSettings,
)
from biomedclip_cli.problems import Problem
from biomedclip_cli.runs.checkpoints import (
    newest_complete_checkpoint,
    prune_checkpoints,
)
from biomedclip_cli.runs.folder import EPOCH_CHECKPOINT, LOG_FILE, node_log_name

BAD_INPUT_EXIT_CODE = 2
QUIETED_LOGGERS = ("torch", "urllib3", "PIL", "httpx", "httpx2", "httpcore", "huggingface_hub")
original_setup_logging = open_clip_main.setup_logging
original_torch_save = torch.save
original_get_latest_checkpoint = open_clip_main.get_latest_checkpoint
original_train_one_epoch = open_clip_main.train_one_epoch
original_create_model_and_transforms = open_clip_main.create_model_and_transforms


class CpuFriendlyDDP(torch.nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that drops CPU `device_ids`, which torch >= 2.x rejects for CPU modules.

    open_clip_train passes `device_ids=[device]` even when the device is the CPU (gloo ranks).
    """

    def __init__(self, module: torch.nn.Module, device_ids: list | None = None, *args: object, **kwargs: object) -> None:
        if device_ids and all(torch.device(d).type == "cpu" for d in device_ids):
            device_ids = None
        super().__init__(module, device_ids, *args, **kwargs)


def quiet_setup_logging(node_log: Path | None) -> Callable[..., None]:
    """open_clip's setup_logging, then library loggers put back to WARNING; on a node other than 0, also into its node log.

    open_clip sets every logger that exists to INFO, which makes torch print compiler statistics
    from every rank at exit and the HTTP client log every shard request; only open_clip's own lines
    (and bmclip's warnings about shards) belong in the training log. open_clip gives a log file to
    global rank 0 only (out.log); `node_log` gives the first rank of each other node its own.
    """

    def setup(log_file: str | None, level: int, include_host: bool = False) -> None:
        original_setup_logging(log_file or (str(node_log) if node_log else None), level, include_host)
        for name in [*QUIETED_LOGGERS, *logging.root.manager.loggerDict]:
            if name.split(".")[0] in QUIETED_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        if node_log is not None and not log_file:
            logging.info(f"bmclip: node {os.environ.get('GROUP_RANK')} of {os.environ.get('GROUP_WORLD_SIZE', '?')} nodes, "
                         f"host {socket.gethostname()}, global ranks from {os.environ.get('RANK')}")

    return setup


def let_open_clip_unlock_bert_layers() -> None:
    """Name BERT's layer list and embeddings in open_clip's table of Hugging Face architectures.

    open_clip's HFTextEncoder.lock(unlocked_layers=N) looks them up there, and its "bert" entry (the
    text tower of BiomedCLIP and PubMedBERT models) lacks them, so --lock-text-unlocked-layers fails
    with KeyError 'layer_attr'. BERT keeps them where RoBERTa does, whose entry has them.
    """
    from open_clip.hf_configs import arch_dict

    arch_dict["bert"]["config_names"].setdefault("layer_attr", "layer")
    arch_dict["bert"]["config_names"].setdefault("token_embeddings_attr", "embeddings")


def prepare_open_clip(node_log: Path | None = None) -> None:
    """Register bmclip's model configs (bmclip-tiny, ...) and the hf:// scheme, install the CPU DDP shim, keep the log readable."""
    register_with_open_clip()
    let_open_clip_unlock_bert_layers()
    register_hf_scheme()
    torch.nn.parallel.DistributedDataParallel = CpuFriendlyDDP
    open_clip_main.setup_logging = quiet_setup_logging(node_log)


def atomic_checkpoint_save(keep: int | None, entries: dict[str, Any] | None = None) -> Callable[..., None]:
    """torch.save that writes epoch_K.pt files under a temporary name, syncs and renames them into place.

    A kill at any moment leaves each epoch_K.pt complete or absent (a leftover `.partial` file is
    ignored by open_clip and bmclip). With `keep`, older epoch checkpoints are deleted after a
    newer one is verified complete. `entries` are added to each epoch checkpoint's dict (a LoRA
    run's settings). Every other torch.save call is passed through unchanged.
    """

    def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(f, (str, os.PathLike)) or not EPOCH_CHECKPOINT.match(Path(f).name):
            return original_torch_save(obj, f, *args, **kwargs)
        if isinstance(obj, dict):
            obj = {**obj, **(entries or {})}
        target = Path(f)
        partial = partial_path(target)
        original_torch_save(obj, partial, *args, **kwargs)
        _sync(partial)
        os.replace(partial, target)
        with contextlib.suppress(OSError):  # some network file systems cannot sync a folder
            _sync(target.parent)
        if keep:
            for removed in prune_checkpoints(target.parent.parent, keep):
                logging.info(f"bmclip: deleted {removed} (keeping the newest {keep} checkpoints)")
        return None

    return save


def _sync(path: Path) -> None:
    """Flush a file's or a folder's contents to disk, so a rename never publishes unwritten data."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ResumeLookup:
    """Answers open_clip's `--resume latest` lookup with a checkpoint bmclip has verified.

    open_clip takes the file whose name sorts last without checking it, and refuses an explicit
    `--resume FILE` when the run folder already has its log ("Experiment already exists"). So
    `--resume latest` gets the newest checkpoint that loads, and an explicit file for a run folder
    with a log goes through open_clip's `latest` path (which appends to the log) answered with that file.
    """

    def __init__(self) -> None:
        self.chosen: str | None = None

    def parse_args(self, argv: list[str]) -> argparse.Namespace:
        """open_clip's parse_args, with an explicit resume into an existing run folder turned into `latest`."""
        args = parse_args(argv)
        if args.resume not in (None, OPEN_CLIP_RESUME_LATEST) and args.name and _has_log(Path(args.logs) / args.name):
            self.chosen, args.resume = args.resume, OPEN_CLIP_RESUME_LATEST
        return args

    def latest_checkpoint(self, path: str, remote: bool) -> str | None:
        """The checkpoint open_clip resumes from under `latest` (path is <logs>/<name>/checkpoints)."""
        if self.chosen is not None:
            return self.chosen
        if remote:
            return original_get_latest_checkpoint(path, remote)
        point = newest_complete_checkpoint(Path(path).parent)
        for skipped in point.skipped:
            logging.warning(f"bmclip: {skipped.line()}")
        return str(point.checkpoint) if point.checkpoint else None


def _has_log(run_dir: Path) -> bool:
    return (run_dir / LOG_FILE).exists() or any(run_dir.glob("out-*"))


def logging_resume_step(train_one_epoch: Callable[..., Any]) -> Callable[..., Any]:
    """open_clip's train_one_epoch; when the first epoch run is not epoch 0 (a resume), it first logs the global step."""
    first_call = True

    def train(model: Any, data: dict, loss: Any, epoch: int, optimizer: Any, scaler: Any, scheduler: Any, dist_model: Any,
              args: argparse.Namespace, **kwargs: Any) -> Any:
        nonlocal first_call
        if first_call and epoch > 0 and is_master(args):
            steps_per_epoch = data["train"].dataloader.num_batches // args.accum_freq
            logging.info(f"bmclip: continuing at epoch {epoch}, step {epoch * steps_per_epoch} of {args.epochs * steps_per_epoch}")
        first_call = False
        return train_one_epoch(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, **kwargs)

    return train


def make_resume_safe(keep_checkpoints: int | None, entries: dict[str, Any]) -> None:
    """Atomic checkpoint saves (keeping the newest `keep_checkpoints`, adding `entries`), verified resume lookups."""
    torch.save = atomic_checkpoint_save(keep_checkpoints, entries)
    lookup = ResumeLookup()
    open_clip_main.parse_args = lookup.parse_args
    open_clip_main.get_latest_checkpoint = lookup.latest_checkpoint


def add_fine_tuning(run_dir: Path | None, lora: LoraSettings | None, plan: ZeroShotPlan | None, entries: dict[str, Any],
                    pixels: PixelSettings) -> None:
    """LoRA adapters on the model open_clip builds; the parameter count, the resume step and --val-zeroshot around each epoch.

    `entries` go into a --keep-best checkpoint as into every epoch checkpoint; `pixels` reads the zero-shot images.
    """
    hooks = EpochHooks(original_train_one_epoch, run_dir, plan, entries, original_torch_save, pixels)
    create = hooks.remember_preprocess(original_create_model_and_transforms)
    open_clip_main.create_model_and_transforms = with_lora(create, lora) if lora else create
    open_clip_main.train_one_epoch = logging_resume_step(hooks)


def read_data_as_bmclip(run_dir: Path | None, pixels: PixelSettings, max_bad_samples: float, train_num_samples: int | None) -> None:
    """open_clip's CSV and webdataset readers read images with bmclip's reader, and skip and list unreadable samples (with a run folder)."""
    install_image_reader(pixels)
    if run_dir is not None:
        install_sample_guard(run_dir, max_bad_samples, train_num_samples)


def split_worker_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """bmclip's worker options (before a `--`) and open_clip's arguments (after it, or all when there is none)."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    own, open_clip_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else ([], argv)
    parser = argparse.ArgumentParser(prog="python -m biomedclip_cli.launch.worker")
    parser.add_argument(WORKER_KEEP_CHECKPOINTS, type=int, default=None, help="keep only the newest K epoch checkpoints")
    parser.add_argument(WORKER_MAX_BAD_SAMPLES, type=float, default=DEFAULT_MAX_BAD_SAMPLES,
                        help="unreadable samples to skip: a count, or below 1 a fraction of the training samples")
    parser.add_argument(WORKER_LORA, type=lambda text: LoraSettings.from_dict(json.loads(text)), default=None,
                        help="LoRA settings as JSON: rank, alpha, dropout, targets")
    parser.add_argument(WORKER_ZERO_SHOT, type=ZeroShotPlan.from_json, default=None,
                        help="zero-shot evaluation after epochs as JSON: csv, label_column, every, keep_best")
    parser.add_argument(WORKER_INTENSITY, default=DEFAULT_INTENSITY, help="how images of more than 8 bits map to 8 (bmclip train --help)")
    parser.add_argument(WORKER_MAX_PIXELS, type=int, default=DEFAULT_MAX_PIXELS, help="images with more pixels are read reduced")
    return parser.parse_args(own), open_clip_args


def hub_access_problems(parsed: argparse.Namespace) -> list[Problem]:
    """Problems reaching the hub repos of hf:// --train-data/--val-data (as open_clip's own parser read the arguments)."""
    return [problem for option, data in (("--train-data", parsed.train_data), ("--val-data", parsed.val_data))
            if data for problem in check_hub_access(data, option)]


def take_run_folder_role(run_dir: Path) -> Path | None:
    """This rank's part in a run folder shared by several nodes; the node log it writes, if any.

    Global rank 0 writes the run state its node's bmclip process handed over (launch/handover.py).
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
    options, open_clip_args = split_worker_args(list(sys.argv[1:] if argv is None else argv))
    parsed = parse_args(open_clip_args)
    problems = hub_access_problems(parsed)
    if problems:
        print(f"bmclip: error: {problems[0].line()}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    run_dir = Path(parsed.logs) / parsed.name if parsed.name else None
    if run_dir is not None:
        take_console(run_dir, parsed.epochs, os.environ)
    prepare_open_clip(take_run_folder_role(run_dir) if run_dir is not None else None)
    entries = checkpoint_entries(options.lora)
    make_resume_safe(options.keep_checkpoints, entries)
    pixels = PixelSettings.of(options.intensity, options.max_pixels)
    add_fine_tuning(run_dir, options.lora, options.val_zeroshot, entries, pixels)
    read_data_as_bmclip(run_dir, pixels, options.max_bad_samples, parsed.train_num_samples)
    try:
        result = open_clip_main.main(open_clip_args)
    except Exception:
        logging.exception(f"bmclip: rank {os.environ.get('RANK', '0')} failed")
        raise
    return 1 if result == -1 else 0


class RankErrorHandler(ErrorHandler):
    """torchelastic's error file writer, adding which rank raised (torchrun copies the first failed rank's file to bmclip's)."""

    def record_exception(self, e: BaseException) -> None:
        """Write the exception as torchelastic does, with this process's global rank in its extraInfo."""
        super().record_exception(e)
        path = os.environ.get(ERROR_FILE_VARIABLE)
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
            data["message"]["extraInfo"]["rank"] = os.environ.get("RANK", "0")
            with open(path, "w", encoding="utf-8") as stream:
                json.dump(data, stream)


if __name__ == "__main__":
    # torchrun starts each rank in a session of its own, where nothing would stop it if the launcher were killed.
    die_with_parent(signal.SIGKILL)
    sys.exit(record(main, error_handler=RankErrorHandler())())
