"""What hardware the training processes will see, probed without importing torch."""

from __future__ import annotations

import os
import shutil
import subprocess

from biomedclip_cli.config import Precision, TrainConfig
from biomedclip_cli.problems import Problem, error

GPU_PRECISIONS = {p for p in Precision if p not in (Precision.auto, Precision.fp32)}
BF16_COMPUTE_CAPABILITY = 8.0


def _nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output for `args`, or None where it is missing or fails (no GPU, no driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        result = subprocess.run([smi, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def visible_gpu_count() -> int:
    """GPUs a process started here would see: nvidia-smi's list, narrowed by CUDA_VISIBLE_DEVICES."""
    listing = _nvidia_smi("-L")
    if listing is None:
        return 0
    installed = sum(1 for line in listing.splitlines() if line.startswith("GPU "))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return installed
    wanted = [item for item in visible.split(",") if item.strip() and item.strip() != "-1"]
    return min(len(wanted), installed)


def gpus_support_bf16(gpus: str | None) -> bool | None:
    """Whether every GPU the run uses computes in bfloat16 (compute capability >= 8.0: A100, H100, L4, RTX 30xx and newer).

    `gpus` are the --gpus indices (None: all GPUs in CUDA_VISIBLE_DEVICES, else all installed). None when
    nvidia-smi cannot tell (no GPU here, or a driver too old to report compute capabilities).
    """
    listing = _nvidia_smi("--query-gpu=index,compute_cap", "--format=csv,noheader")
    if listing is None:
        return None
    capabilities: dict[str, float] = {}
    for line in listing.splitlines():
        index, _, capability = line.partition(",")
        try:
            capabilities[index.strip()] = float(capability)
        except ValueError:
            return None
    wanted = gpus or os.environ.get("CUDA_VISIBLE_DEVICES")
    indices = [i.strip() for i in wanted.split(",")] if wanted else list(capabilities)
    if not indices or not all(i in capabilities for i in indices):
        return None
    return min(capabilities[i] for i in indices) >= BF16_COMPUTE_CAPABILITY


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
