"""Does a local --pretrained checkpoint fit --model? Asked of open_clip's own loader, on the meta device.

The model is built on PyTorch's meta device (shapes, no memory) and the checkpoint is read the same
way (tensor metadata only, so a 1.7 GB ViT-L-14 file costs milliseconds); open_clip's
`load_checkpoint` then does exactly what training will do with the file: take `state_dict` out of a
training checkpoint, drop the `module.` prefix, convert older layouts, resize position embeddings,
and load strictly. When it refuses, the message says what differs and which model the file
probably belongs to (from the measured state_dict sizes in models/facts.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomedclip_cli.models.facts import meta_model, models_with_signature
from biomedclip_cli.problems import Problem, error

SAFETENSORS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class StateDiff:
    """How a checkpoint's state_dict differs from a model's: keys only in one of them, and shape changes."""

    tensors: int
    elements: int
    missing: list[str]
    unexpected: list[str]
    reshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]]


def _load_device(path: Path) -> str:
    # safetensors cannot read onto the meta device; it reads the file (memory-mapped) on the CPU instead.
    return "cpu" if path.suffix == SAFETENSORS_SUFFIX else "meta"


def state_diff(state: dict[str, Any], model_state: dict[str, Any]) -> StateDiff:
    """Keys and shapes of a checkpoint's state_dict against a model's."""
    reshaped = [(key, tuple(state[key].shape), tuple(model_state[key].shape))
                for key in state if key in model_state and tuple(state[key].shape) != tuple(model_state[key].shape)]
    return StateDiff(len(state), sum(t.numel() for t in state.values()),
                     [key for key in model_state if key not in state], [key for key in state if key not in model_state], reshaped)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) or "scalar"


def _mismatch_problem(path: Path, model_name: str, diff: StateDiff) -> Problem:
    parts = []
    if diff.reshaped:
        key, theirs, ours = diff.reshaped[0]
        parts.append(f"{len(diff.reshaped)} of its {diff.tensors} tensors have other shapes ({key}: {_shape(theirs)} in the file, "
                     f"{_shape(ours)} in the model)")
    if diff.missing:
        parts.append(f"{len(diff.missing)} model tensors are missing (e.g. {diff.missing[0]})")
    if diff.unexpected:
        parts.append(f"{len(diff.unexpected)} tensors are not in the model (e.g. {diff.unexpected[0]})")
    candidates = [name for name in models_with_signature(diff.elements) if name != model_name]
    if candidates:
        shown = ", ".join(candidates[:4]) + (" ..." if len(candidates) > 4 else "")
        fix = f"it looks like a {candidates[0]} checkpoint (same {diff.elements:,} values as: {shown}); pass --model {candidates[0]}"
    else:
        fix = f"no open_clip model config has its {diff.elements:,} values; pass the --model it was trained with"
    return error("--pretrained", f"'{path}' does not fit --model {model_name}: {'; '.join(parts) or 'open_clip refuses it'}", fix)


def _short_reason(exc: Exception) -> str:
    """The telling line of a loading error (torch's weights-only refusals open with a long preamble)."""
    text = str(exc).split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:160] if lines else type(exc).__name__


def check_checkpoint_fits(path: Path, model_name: str) -> list[Problem]:
    """Problems loading the local checkpoint `path` into `model_name`, as open_clip's loader finds them."""
    import open_clip

    device = _load_device(path)
    try:
        state = open_clip.factory.load_state_dict(str(path), device=device)
    except Exception as exc:
        reason = _short_reason(exc)
        return [error("--pretrained", f"'{path}' is not a checkpoint PyTorch can read ({reason})",
                      "pass the .pt/.bin/.safetensors file of an open_clip model (a training checkpoint epoch_K.pt works)")]
    model = meta_model(model_name)
    try:
        open_clip.load_checkpoint(model, str(path), device=device)
    except Exception:
        return [_mismatch_problem(path, model_name, state_diff(state, model.state_dict()))]
    return []
