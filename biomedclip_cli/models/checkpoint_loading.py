"""Loading a checkpoint file into a built open_clip model, LoRA checkpoints included, and merging LoRA runs into plain weights.

open_clip loads a `pretrained=FILE` only for its own model names and only without adapters; bmclip
loads every checkpoint file itself, so that runs of hf-hub:/local-dir: models and LoRA runs evaluate
and export like any other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from biomedclip_cli.models.lora import CHECKPOINT_KEY, LoraSettings, add_lora, has_lora_weights
from biomedclip_cli.problems import ProblemFound, error

DDP_PREFIX = "module."


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file as a dict holding at least `state_dict` (a bare state_dict or safetensors file is wrapped)."""

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {"state_dict": load_file(str(path))}
    try:
        loaded = _load_mapped(path)
    except Exception as exc:  # torch raises many types for an unreadable file
        raise ProblemFound(error("--checkpoint", f"'{path}' cannot be read as a checkpoint ({type(exc).__name__})",
                                 "pass a complete epoch_K.pt, best.pt or weights file")) from None
    if not isinstance(loaded, dict):
        raise ProblemFound(error("--checkpoint", f"'{path}' holds no state_dict", "pass an open_clip checkpoint"))
    return loaded if "state_dict" in loaded else {"state_dict": loaded}


def _load_mapped(path: Path) -> Any:
    """torch.load memory-mapped, so that only what is looked at is read (a plain checkpoint is read again by open_clip);
    files in torch's legacy format cannot be mapped and are read whole."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        return torch.load(path, map_location="cpu", weights_only=True)


def lora_settings_of(checkpoint: dict[str, Any], path: Path) -> LoraSettings | None:
    """The LoRA settings a checkpoint was trained with (None for a plain checkpoint)."""
    settings = checkpoint.get(CHECKPOINT_KEY)
    if settings:
        return LoraSettings.from_dict(settings)
    if has_lora_weights(checkpoint["state_dict"]):
        raise ProblemFound(error("--checkpoint", f"'{path}' holds LoRA adapters but not the settings they were made with",
                                 "use a checkpoint written by bmclip train --lora-rank"))
    return None


def _without_ddp_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    if state_dict and all(key.startswith(DDP_PREFIX) for key in state_dict):
        return {key.removeprefix(DDP_PREFIX): value for key, value in state_dict.items()}
    return state_dict


def load_weights_into(model: Any, path: Path) -> LoraSettings | None:
    """Load a checkpoint file into `model`; a LoRA checkpoint's adapters are added, loaded and merged, leaving a plain model.

    Returns the LoRA settings found (None for a plain checkpoint).
    """
    import open_clip

    checkpoint = read_checkpoint(path)
    settings = lora_settings_of(checkpoint, path)
    if settings is None:
        open_clip.load_checkpoint(model, str(path))
        return None
    tuner = add_lora(model, settings)
    model.load_state_dict(_without_ddp_prefix(checkpoint["state_dict"]))
    tuner.merge_and_unload()
    return settings


def model_with_weights(model_name: str, checkpoint: Path, device: str = "cpu") -> tuple[Any, Any, LoraSettings | None]:
    """open_clip's `model_name` built without its own weights, the checkpoint file loaded into it; with its eval preprocessing
    and the LoRA settings found (merged already)."""
    model, preprocess = empty_model(model_name, device)
    return model, preprocess, load_weights_into(model, checkpoint)


def model_with_state(model_name: str, state: dict[str, Any], device: str = "cpu") -> tuple[Any, Any]:
    """open_clip's `model_name` with these weights (a plain state dict: interpolated, averaged), and its eval preprocessing."""
    model, preprocess = empty_model(model_name, device)
    model.load_state_dict(state)
    return model, preprocess


def empty_model(model_name: str, device: str = "cpu") -> tuple[Any, Any]:
    """open_clip's `model_name` built without loading any weights, and its eval preprocessing.

    open_clip warns that it loaded no weights when asked to load none; bmclip loads them next, so the warning is kept quiet.
    """
    import open_clip

    logging.disable(logging.WARNING)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, device=device, load_weights=False)
    finally:
        logging.disable(logging.NOTSET)
    return model, preprocess
