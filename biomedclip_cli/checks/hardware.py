"""What hardware the training processes will see, probed without importing torch."""

from __future__ import annotations

import os

from biomedclip_cli.config import Precision, TrainConfig
from biomedclip_cli.envinfo.nvidia_smi import Gpu, probe
from biomedclip_cli.problems import Problem, error

GPU_PRECISIONS = {p for p in Precision if p not in (Precision.auto, Precision.fp32)}
BF16_COMPUTE_CAPABILITY = (8, 0)


def installed_gpus() -> list[Gpu]:
    """Every GPU of this machine, numbered as nvidia-smi lists them (0..N-1, whatever CUDA_VISIBLE_DEVICES says); [] without nvidia-smi."""
    return list(probe().gpus)


def _by_indices(gpus: list[Gpu], indices: str) -> list[Gpu]:
    wanted = [item.strip() for item in indices.split(",") if item.strip() and item.strip() != "-1"]
    by_index = {str(gpu.index): gpu for gpu in gpus}
    return [by_index[item] for item in wanted if item in by_index]


def visible_gpus(installed: list[Gpu] | None = None) -> list[Gpu]:
    """GPUs a process started here would see: nvidia-smi's list (`installed`, probed when None) narrowed by CUDA_VISIBLE_DEVICES indices."""
    gpus = installed_gpus() if installed is None else installed
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return gpus if visible is None else _by_indices(gpus, visible)


def run_gpus(installed: list[Gpu], gpus: str | None) -> list[Gpu]:
    """The GPUs a run launched here trains on: the --gpus indices among every installed GPU, else the visible ones.

    The launch replaces CUDA_VISIBLE_DEVICES with --gpus, so its indices are nvidia-smi's, not
    positions among the GPUs CUDA_VISIBLE_DEVICES leaves visible.
    """
    return _by_indices(installed, gpus) if gpus else visible_gpus(installed)


def gpus_support_bf16(used: list[Gpu]) -> bool | None:
    """Whether every GPU the run uses (run_gpus) computes in bfloat16 (compute capability >= 8.0: A100, H100, L4, RTX 30xx and newer).

    None when that cannot be told: no GPU, or a driver too old to report compute capabilities.
    """
    capabilities = [gpu.compute_capability for gpu in used]
    if not capabilities or any(capability is None for capability in capabilities):
        return None
    return all(capability >= BF16_COMPUTE_CAPABILITY for capability in capabilities if capability is not None)


def check_hardware(config: TrainConfig, gpus: int, installed: int | None = None) -> list[Problem]:
    """Problems with running `config` on `gpus` GPUs (errors at launch, warnings under --dry-run).

    `installed` is how many GPUs nvidia-smi lists here: --gpus must name some of them (None: not checked).
    """
    problems: list[Problem] = []
    if gpus == 0 and config.precision in GPU_PRECISIONS:
        problems.append(error("--precision", f"{config.precision.value} needs a GPU and none is visible",
                              "use --precision fp32 (or auto) to train on the CPU"))
    if config.gpus is not None and installed is not None:
        wanted = [int(i) for i in config.gpus.split(",")]
        if installed == 0:
            problems.append(error("--gpus", f"GPUs {config.gpus} requested but nvidia-smi lists none here",
                                  "drop --gpus to train on the CPU"))
        elif max(wanted) >= installed:
            problems.append(error("--gpus", f"GPU {max(wanted)} requested but nvidia-smi lists only {installed} here (0..{installed - 1})",
                                  "pick indices nvidia-smi lists (--gpus replaces CUDA_VISIBLE_DEVICES)"))
    available = len(config.gpus.split(",")) if config.gpus else gpus
    if available > 0 and config.nproc_per_node is not None and config.nproc_per_node > available:
        problems.append(error("--nproc-per-node", f"{config.nproc_per_node} processes but only {available} GPUs to run them on",
                              f"use --nproc-per-node {available} or fewer"))
    return problems
