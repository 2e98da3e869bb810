"""Every change bmclip makes inside a rank to open_clip_train, open_clip, torch and webdataset: one list, applied in this order.

| replaced or extended | by | made in | why |
|---|---|---|---|
| open_clip's model configs | + bmclip's (bmclip-tiny) | models/configs | CPU tests and the demo |
| open_clip's `arch_dict["bert"]` | + BERT's layer names | rank/compat.py | --lock-text-unlocked-layers on BiomedCLIP's text tower |
| webdataset's URL schemes | + `hf://` | hub/streaming.py | stream hub shards, the token in a header; given-up shards not fetched again |
| `torch.nn.parallel.DistributedDataParallel` | CpuFriendlyDDP | rank/compat.py | gloo ranks on CPU |
| `open_clip_train.main.setup_logging` | libraries quiet, node logs | rank/compat.py | a readable out.log; a log per node |
| `torch.save` | atomic epoch checkpoints | rank/checkpoint_saves.py | a kill never leaves a truncated epoch_K.pt; --keep-checkpoints; LoRA entries |
| `open_clip_train.main.parse_args`, `get_latest_checkpoint` | a verified resume lookup | rank/checkpoint_saves.py | resume from the newest checkpoint that loads |
| `open_clip_train.main.create_model_and_transforms` | + LoRA adapters, the eval preprocess kept | rank/lora_adapters.py, rank/epoch_hooks.py | --lora-rank, --val-zeroshot |
| `open_clip_train.main.train_one_epoch` | EpochHooks around a watched epoch | rank/epoch_hooks.py, rank/hang_watchdog.py | parameters and resume step; --val-zeroshot, --keep-best; --hang-timeout |
| `torch.distributed.init_process_group` | its timeout from --hang-timeout | rank/hang_watchdog.py | collectives end after the watchdog |
| `open_clip_train.data.CsvDataset` `__init__`, `__getitem__` | the image reader; unreadable rows skipped | rank/image_reading.py, rank/sample_guard.py | 16-bit and DICOM; --max-bad-samples |
| `webdataset.autodecode.imagehandler` | the image reader for `pilrgb` | rank/image_reading.py | 16-bit and DICOM shard members |
| `open_clip_train.data.get_data` (and main's) | shard decoding sized for the training transform | rank/image_reading.py | --scaled-decode |
| `webdataset.autodecode.Decoder.decode` | other image members offered as png; failures named | rank/image_reading.py, rank/sample_guard.py | tif/dcm members; bad-samples.tsv |
| `open_clip_train.data.filter_no_caption_or_no_image` | --where first; every member the reader reads; drops listed | rank/sample_selection.py, rank/image_reading.py, rank/sample_guard.py | --where, --classes; bad-samples.tsv |
| `open_clip_train.data.log_and_continue` | unreadable samples recorded | rank/sample_guard.py | same |

Each replacement wraps the original captured when this module is imported, so applying them again in one process (bench-data
inside a test process) replaces them rather than stacking them.
"""  # noqa: E501 - the table's rows cannot wrap

from __future__ import annotations

import os
from pathlib import Path

import open_clip.hf_configs
import open_clip_train.data as open_clip_data
import torch
import webdataset.autodecode
from open_clip_train import main as open_clip_main

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.hub.streaming import register_hf_scheme
from biomedclip_cli.models.configs import register_with_open_clip
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.rank.checkpoint_saves import ResumeLookup, atomic_checkpoint_save
from biomedclip_cli.rank.compat import CpuFriendlyDDP, name_bert_layers, quiet_setup_logging
from biomedclip_cli.rank.epoch_hooks import EpochHooks, ZeroShotPlan
from biomedclip_cli.rank.hang_watchdog import HangWatchdog, with_timeout
from biomedclip_cli.rank.image_reading import ShardReading, csv_item_reader, has_image_and_caption, offering_open_clip_keys
from biomedclip_cli.rank.lora_adapters import checkpoint_entries, with_lora
from biomedclip_cli.rank.sample_guard import (
    SampleGuard,
    listing_filter,
    naming_failures,
    recording_handler,
    remembering_source,
    skipping_unreadable_rows,
)
from biomedclip_cli.rank.sample_selection import SampleSelection
from biomedclip_cli.rank.settings import lora_settings, pixel_settings
from biomedclip_cli.runs.bad_samples import given_up_folder

ORIGINAL = {
    "setup_logging": open_clip_main.setup_logging,
    "torch.save": torch.save,
    "parse_args": open_clip_main.parse_args,
    "get_latest_checkpoint": open_clip_main.get_latest_checkpoint,
    "create_model_and_transforms": open_clip_main.create_model_and_transforms,
    "train_one_epoch": open_clip_main.train_one_epoch,
    "init_process_group": torch.distributed.init_process_group,
    "CsvDataset.__init__": open_clip_data.CsvDataset.__init__,
    "imagehandler": webdataset.autodecode.imagehandler,
    "Decoder.decode": webdataset.autodecode.Decoder.decode,
    "log_and_continue": open_clip_data.log_and_continue,
    "get_data": open_clip_data.get_data,
}


def apply_rank_patches(settings: TrainConfig, run_dir: Path | None, node_log: Path | None, train_num_samples: int | None) -> None:
    """Every change of the table above, for a rank of a run with these settings (`run_dir` None: open_clip was given no --name)."""
    register_with_open_clip()
    name_bert_layers(open_clip.hf_configs.arch_dict)
    register_hf_scheme(given_up_folder(run_dir))
    torch.nn.parallel.DistributedDataParallel = CpuFriendlyDDP  # type: ignore[misc]
    open_clip_main.setup_logging = quiet_setup_logging(ORIGINAL["setup_logging"], node_log)
    lora = lora_settings(settings)
    entries = checkpoint_entries(lora)
    torch.save = atomic_checkpoint_save(ORIGINAL["torch.save"], settings.keep_checkpoints, entries)
    lookup = ResumeLookup(ORIGINAL["parse_args"], ORIGINAL["get_latest_checkpoint"])
    open_clip_main.parse_args, open_clip_main.get_latest_checkpoint = lookup.parse_args, lookup.latest_checkpoint
    pixels = pixel_settings(settings)
    train_one_epoch = ORIGINAL["train_one_epoch"]
    if settings.hang_timeout and run_dir is not None:
        train_one_epoch = HangWatchdog(settings.hang_timeout, run_dir, os.environ).watching(train_one_epoch)
        torch.distributed.init_process_group = with_timeout(ORIGINAL["init_process_group"], settings.hang_timeout)
    hooks = EpochHooks(train_one_epoch, run_dir, ZeroShotPlan.of(settings), entries, ORIGINAL["torch.save"], pixels)
    create = hooks.remember_preprocess(ORIGINAL["create_model_and_transforms"])
    open_clip_main.create_model_and_transforms = with_lora(create, lora) if lora else create
    open_clip_main.train_one_epoch = hooks
    guard = SampleGuard(run_dir, settings.max_bad_samples) if run_dir is not None else None
    selection = SampleSelection.for_run(settings.sample_filter(), run_dir)
    read_data_as_bmclip(pixels, settings.scaled_decode, guard, train_num_samples, selection)


def read_data_as_bmclip(pixels: PixelSettings, scaled_decode: bool, guard: SampleGuard | None = None,
                        train_num_samples: int | None = None, selection: SampleSelection | None = None) -> None:
    """open_clip's CSV and webdataset readers read images with bmclip's reader and, with a guard, skip and list unreadable samples.

    With `scaled_decode`, JPEGs are decoded no larger than each dataset's transform needs; with a `selection`, shard samples its
    filter drops are passed over before decoding, and counted. bench-data calls it without a guard: it measures the data
    pipeline and writes nothing of the run's.
    """
    getitem = csv_item_reader(pixels, scaled_decode)
    decode = offering_open_clip_keys(ORIGINAL["Decoder.decode"])
    shards = ShardReading(pixels, scaled_decode)
    webdataset.autodecode.imagehandler = shards.reading_imagehandler(ORIGINAL["imagehandler"])
    open_clip_data.get_data = open_clip_main.get_data = shards.sized_for_training(ORIGINAL["get_data"])
    samples = train_num_samples or 0
    readable = has_image_and_caption if guard is None else listing_filter(guard, samples)
    writer = f"rank{guard.rank if guard is not None else 0}"
    open_clip_data.filter_no_caption_or_no_image = selection.selecting(readable, writer) if selection is not None else readable
    if guard is None:
        open_clip_data.CsvDataset.__getitem__ = getitem
        webdataset.autodecode.Decoder.decode = decode
        return
    open_clip_data.CsvDataset.__init__ = remembering_source(ORIGINAL["CsvDataset.__init__"])
    open_clip_data.CsvDataset.__getitem__ = skipping_unreadable_rows(getitem, guard)
    webdataset.autodecode.Decoder.decode = naming_failures(decode)
    open_clip_data.log_and_continue = recording_handler(ORIGINAL["log_and_continue"], guard, samples)
