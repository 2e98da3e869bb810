"""Arithmetic on a model's weights: WiSE-FT's interpolation between the starting and the fine-tuned weights, and checkpoint soups.

WiSE-FT (Wortsman et al., CVPR 2022): θ(α) = (1−α)·θ₀ + α·θ₁, with θ₀ the weights fine-tuning started from and θ₁ the
fine-tuned ones; α = 0 is the start and α = 1 the run, exactly (torch.lerp returns its ends exactly at weights 0 and 1). A
soup is the uniform average of several checkpoints of one run. Only floating-point tensors are mixed; the others (integer
buffers such as position ids) are the same in every set of weights and are taken from the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def interpolated(start: dict[str, Any], end: dict[str, Any], alpha: float) -> dict[str, Any]:
    """The state dict (1−alpha)·start + alpha·end, key by key (both are state dicts of the same model)."""
    import torch

    if start.keys() != end.keys():
        missing = sorted(start.keys() ^ end.keys())
        raise ValueError(f"the two sets of weights are not of one model: {len(missing)} tensors differ, e.g. {missing[0]}")
    return {key: torch.lerp(start[key], value, alpha) if value.is_floating_point() else value for key, value in end.items()}


def averaged(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The uniform average of state dicts of one model (a soup), key by key."""
    import torch

    last = states[-1]
    return {key: torch.stack([state[key] for state in states]).mean(dim=0) if value.is_floating_point() else value
            for key, value in last.items()}
