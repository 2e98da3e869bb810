"""The device bmclip computes on in its own process (eval, bench-data): the one asked for, else a GPU when torch sees one, else the CPU."""

from __future__ import annotations


def compute_device(requested: str | None = None) -> str:
    """`requested` when given (e.g. cuda:1), else "cuda" when torch sees a GPU, else "cpu" (imports torch)."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
