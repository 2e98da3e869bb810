"""How fast the configured data pipeline delivers samples, how fast the model trains on them, and which one limits training.

The measurements behind `bmclip bench-data`. Both run in this process with open_clip_train's own pieces:
its data loader (`open_clip_train.data.get_data`, built from the same arguments a launch would pass) and
its model, loss, autocast and optimizer settings, so the numbers are those of one training process.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from biomedclip_cli.config import DatasetType, Preset, ResolvedConfig
from biomedclip_cli.launch.openclip_args import openclip_argv, parse_with_open_clip
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.problems import Problem, ProblemFound
from biomedclip_cli.rank.sample_selection import SampleSelection

HEADROOM = 1.2
WARMUP_STEPS = 2
Advance = Callable[[int], None]


@dataclass(frozen=True)
class DataRate:
    """The loader's steady rate (after its first batch, which pays for starting the workers) and how long that first batch took."""

    samples_per_second: float
    first_batch_seconds: float
    batches: int


@dataclass(frozen=True)
class StepRate:
    """Training steps of the model alone (forward, loss, backward, optimizer step) on one device."""

    samples_per_second: float
    steps: int
    device: str


@dataclass(frozen=True)
class Verdict:
    """Which side limits training, and what to change."""

    bottleneck: str
    summary: str
    advice: list[str]


def open_clip_args(config: ResolvedConfig, device: str) -> argparse.Namespace:
    """open_clip_train's arguments for a resolved config, completed as its main() completes them for a single process."""
    parsed = parse_with_open_clip(openclip_argv(config))
    if isinstance(parsed, Problem):
        raise ProblemFound(parsed)
    parsed.distributed, parsed.world_size, parsed.rank, parsed.local_rank = False, 1, 0, 0
    parsed.device = device
    parsed.distill = False
    parsed.val_data = parsed.imagenet_val = parsed.imagenet_v2 = None
    if isinstance(parsed.force_image_size, (tuple, list)) and len(parsed.force_image_size) == 1:
        parsed.force_image_size = parsed.force_image_size[0]
    return parsed


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hide open_clip's 'no pretrained weights' log line and torch's pin_memory-without-GPU warning (both expected here)."""
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def build_model(args: argparse.Namespace):
    """The model (random weights: speed does not depend on them), its train/val transforms and its tokenizer,
    as open_clip_train builds them."""
    import open_clip

    from biomedclip_cli.models.configs import register_with_open_clip

    register_with_open_clip()
    with _quiet_libraries():
        model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            args.model, None, precision=args.precision, device=args.device, force_quick_gelu=args.force_quick_gelu,
            force_custom_text=args.force_custom_text, force_patch_dropout=args.force_patch_dropout,
            force_image_size=args.force_image_size, force_context_length=args.force_context_length, image_mean=args.image_mean,
            image_std=args.image_std, image_interpolation=args.image_interpolation, image_resize_mode=args.image_resize_mode,
            aug_cfg=args.aug_cfg, output_dict=True, cache_dir=args.cache_dir)
    if args.lock_image:
        model.lock_image_tower(unlocked_groups=args.lock_image_unlocked_groups, freeze_bn_stats=args.lock_image_freeze_bn_stats)
    if args.lock_text:
        model.lock_text_tower(unlocked_layers=args.lock_text_unlocked_layers, freeze_layer_norm=args.lock_text_freeze_layer_norm)
    if args.grad_checkpointing:
        model.set_grad_checkpointing()
    tokenizer = open_clip.get_tokenizer(args.model, cache_dir=args.cache_dir, context_length=args.force_context_length)
    return model, (preprocess_train, preprocess_val), tokenizer


def train_loader(args: argparse.Namespace, transforms: tuple, tokenizer, pixels: PixelSettings, scaled_decode: bool,
                 selection: SampleSelection | None):
    """open_clip_train's training data (DataInfo: .dataloader with .num_batches) for these arguments, epoch 0,
    its images read and its samples selected as a rank's are."""
    from open_clip_train.data import get_data

    from biomedclip_cli.rank.patches import read_data_as_bmclip

    read_data_as_bmclip(pixels, scaled_decode, selection=selection)
    data = get_data(args, transforms, epoch=0, tokenizer=tokenizer)["train"]
    data.set_epoch(0)
    return data.dataloader


def measure_data(loader, batches: int, advance: Advance) -> tuple[DataRate, tuple]:
    """Pull `batches` batches (at most one epoch) from the loader; return the steady rate and the first batch."""
    batches = min(batches, loader.num_batches)
    start = time.perf_counter()
    with _quiet_libraries():
        iterator = iter(loader)
        first = next(iterator)
    first_done = time.perf_counter()
    advance(len(first[0]))
    samples = pulled = 0
    for pulled, batch in enumerate(iterator, start=2):
        samples += len(batch[0])
        advance(len(batch[0]))
        if pulled >= batches:
            break
    elapsed = time.perf_counter() - first_done
    del iterator
    rate = samples / elapsed if samples else len(first[0]) / (first_done - start)
    return DataRate(rate, first_done - start, max(pulled, 1)), first


def measure_steps(model, args: argparse.Namespace, batch: tuple, steps: int, advance: Advance) -> StepRate:
    """Time `steps` training steps on one batch after WARMUP_STEPS untimed ones (compilation, allocator, cudnn autotuning)."""
    import open_clip
    import torch
    from open_clip_train.precision import get_autocast
    from open_clip_train.train import backward

    device = torch.device(args.device)
    images = batch[0].to(device=device, dtype=open_clip.get_input_dtype(args.precision))
    texts = batch[1].to(device=device)
    loss = open_clip.create_loss(args)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    scaler = torch.amp.GradScaler(device=device.type) if args.precision == "amp" and device.type == "cuda" else None
    autocast = get_autocast(args.precision, device_type=device.type)
    trained = torch.compile(model) if args.torchcompile else model
    model.train()

    def step() -> None:
        optimizer.zero_grad()
        with autocast():
            total = sum(loss(**trained(images, texts), output_dict=True).values())
        backward(total, scaler)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
        advance(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        advance(1)
    elapsed = time.perf_counter() - start
    return StepRate(len(images) * steps / elapsed, steps, str(device))


def verdict(config: ResolvedConfig, data: DataRate, model: StepRate, cpu_cores: int | None = None) -> Verdict:
    """Compare the loader with the model and say what to change (workers, shards, or the model side)."""
    cores = cpu_cores or os.cpu_count() or 1
    processes = config.nproc_per_node
    ratio = data.samples_per_second / model.samples_per_second
    advice: list[str] = []
    if ratio >= HEADROOM:
        summary = (f"the model is the bottleneck: data loading delivers {ratio:.1f}x what the model trains on "
                   f"({data.samples_per_second:,.0f} vs {model.samples_per_second:,.0f} samples/s per process)")
        if config.preset is Preset.none:
            advice.append("to train faster, try --preset fast (see bmclip train --help)")
        if processes * config.workers > cores:
            advice.append(f"{processes} processes x {config.workers} workers exceed the {cores} CPU cores: fewer workers would do")
        return Verdict("model", summary, advice)
    waiting = max(0.0, 1 - ratio)
    if ratio >= 1:
        summary = (f"data loading barely keeps up ({data.samples_per_second:,.0f} vs {model.samples_per_second:,.0f} samples/s per "
                   f"process, less than {HEADROOM:.1f}x headroom): a slow batch will stall the GPU")
    else:
        summary = (f"data loading is the bottleneck: it delivers {data.samples_per_second:,.0f} samples/s, the model could train "
                   f"{model.samples_per_second:,.0f} per process, so the GPU would wait about {waiting:.0%} of the time")
    cores_each = max(cores // processes, 1)
    if config.workers == 0:
        advice.append(f"--workers 0 loads data inside the training process: set --workers {min(4, cores_each)} or more")
    else:
        per_worker = data.samples_per_second / config.workers
        needed = math.ceil(model.samples_per_second * HEADROOM / per_worker)
        if needed <= cores_each:
            advice.append(f"set --workers {needed} (about {per_worker:,.0f} samples/s each; {cores} CPU cores for {processes} process(es))")
        else:
            advice.append(f"about {needed} workers per process would be needed but there are only {cores_each} cores each: "
                          "make each sample cheaper to load")
    if not config.scaled_decode:
        advice.append("--scaled-decode (the default) decodes large JPEG figures at the scale the crop needs, several times faster")
    if config.dataset_type is DatasetType.csv:
        advice.append("a CSV of separate image files costs a file open and a decode per sample: webdataset shards (.tar, "
                      "read sequentially) load faster, especially for many small files or network storage")
    return Verdict("data", summary, advice)
