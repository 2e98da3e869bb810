"""What hardware the training processes will see, probed without importing torch."""

from __future__ import annotations

import os

from biomedclip_cli.config import Precision, TrainConfig
from biomedclip_cli.envinfo.nvidia_smi import Gpu, probe
from biomedclip_cli.problems import Problem, error

GPU_PRECISIONS = {p for p in Precision if p not in (Precision.auto, Precision.fp32)}
BF16_COMPUTE_CAPABILITY = (8, 0)


def visible_gpus() -> list[Gpu]:
    """GPUs a process started here would see: nvidia-smi's list narrowed by CUDA_VISIBLE_DEVICES indices."""
    gpus = list(probe().gpus)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = [item.strip() for item in visible.split(",") if item.strip() and item.strip() != "-1"]
    by_index = {str(gpu.index): gpu for gpu in gpus}
    return [by_index[item] for item in wanted if item in by_index]


def visible_gpu_count() -> int:
    """How many GPUs a process started here would see (0 without nvidia-smi)."""
    return len(visible_gpus())


def gpus_support_bf16(visible: list[Gpu], gpus: str | None) -> bool | None:
    """Whether every GPU the run uses computes in bfloat16 (compute capability >= 8.0: A100, H100, L4, RTX 30xx and newer).

    `visible` are the GPUs a process here sees (visible_gpus()); `gpus` the --gpus indices among them (None: all).
    None when that cannot be told: no GPU, an index nvidia-smi does not show, or a driver too old to report
    compute capabilities.
    """
    wanted = gpus.split(",") if gpus else None
    used = [gpu for gpu in visible if wanted is None or str(gpu.index) in wanted]
    if not used or (wanted is not None and len(used) != len(wanted)):
        return None
    capabilities = [gpu.compute_capability for gpu in used]
    if any(capability is None for capability in capabilities):
        return None
    return all(capability >= BF16_COMPUTE_CAPABILITY for capability in capabilities if capability is not None)


def check_hardware(config: TrainConfig, gpus: int) -> list[Problem]:
    """Problems with running `config` on a node with `gpus` GPUs (errors at launch, warnings under --dry-run)."""
    problems: list[Problem] = []
    if gpus == 0 and config.precision in GPU_PRECISIONS:
        problems.append(error("--precision", f"{config.precision.value} needs a GPU and none is visible",
                              "use --precision fp32 (or auto) to train on the CPU"))
    if config.gpus is not None:
        wanted = [int(i) for i in config.gpus.split(",")]
        if gpus == 0:
            problems.append(error("--gpus", f"GPUs {config.gpus} requested but none is visible", "drop --gpus to train on the CPU"))
        elif max(wanted) >= gpus:
            problems.append(error("--gpus", f"GPU {max(wanted)} requested but only {gpus} are visible (0..{gpus - 1})",
                                  "pick indices below the GPU count"))
    available = len(config.gpus.split(",")) if config.gpus else gpus
    if available > 0 and config.nproc_per_node is not None and config.nproc_per_node > available:
        problems.append(error("--nproc-per-node", f"{config.nproc_per_node} processes but only {available} GPUs to run them on",
                              f"use --nproc-per-node {available} or fewer"))
    return problems
