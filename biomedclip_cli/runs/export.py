"""Plain open_clip weights from a bmclip checkpoint: LoRA adapters merged in, optimizer state dropped.

For an open_clip model name the result is one file that `open_clip.create_model_and_transforms(MODEL,
pretrained=FILE)` loads. open_clip ignores `pretrained` for hf-hub:/local-dir: models, so for those
the result is a model folder (their open_clip_config.json and tokenizer files beside the merged
weights) that `create_model_and_transforms("local-dir:FOLDER")` loads, and that can be uploaded
to the hub as it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomedclip_cli.models.config_lookup import WEIGHT_SUFFIXES, brings_own_weights, model_config_path
from biomedclip_cli.problems import ProblemFound, error

FOLDER_WEIGHTS = "open_clip_model.safetensors"


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the file or folder, how to load it, and whether adapters were merged."""

    path: Path
    load_with: str
    merged_lora: bool
    tensors: int


def check_output(model: str, output: Path) -> None:
    """ProblemFound when `output` cannot take an export of `model`: a file for a model loaded from a folder, or a path in use."""
    if brings_own_weights(model) and output.suffix in (".pt", ".pth", ".bin", ".safetensors"):
        raise ProblemFound(error("--output", f"{model} loads its weights from a folder (open_clip ignores pretrained=FILE for it)",
                                 "pass a folder to write, e.g. --output exported-model"))
    if output.exists() and not (output.is_dir() and not any(output.iterdir())):
        raise ProblemFound(error("--output", f"'{output}' already exists", "pass a new path, or delete it first"))


def export_weights(checkpoint: Path, model: str, output: Path) -> Exported:
    """Write the checkpoint's weights for `model` as plain open_clip weights at `output` (a file, or a folder for hub/local models)."""
    from biomedclip_cli.models.checkpoint_loading import model_with_weights
    from biomedclip_cli.models.configs import register_with_open_clip

    register_with_open_clip()
    check_output(model, output)
    model_object, _, settings = model_with_weights(model, checkpoint)
    return write_weights(model_object.state_dict(), model, output, merged_lora=settings is not None)


def write_weights(state: dict[str, Any], model: str, output: Path, *, merged_lora: bool) -> Exported:
    """Write a plain state dict of `model` where open_clip loads it from: a .pt file, or a model folder for hub/local models."""
    import torch

    check_output(model, output)
    folder = brings_own_weights(model)
    state_dict = {key: value.detach().contiguous() for key, value in state.items()}
    if not folder:
        output.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": state_dict}, output)
        return Exported(output, f'open_clip.create_model_and_transforms("{model}", pretrained="{output}")', merged_lora, len(state_dict))
    from safetensors.torch import save_file

    source = model_config_path(model)
    if source is None:
        raise ProblemFound(error("--model", f"the open_clip_config.json of {model} is not on this machine", "export where the model is"))
    output.mkdir(parents=True, exist_ok=True)
    for item in source.parent.iterdir():
        if item.is_file() and item.suffix not in WEIGHT_SUFFIXES:
            shutil.copyfile(item, output / item.name)
    save_file(state_dict, str(output / FOLDER_WEIGHTS))
    return Exported(output, f'open_clip.create_model_and_transforms("local-dir:{output}")', merged_lora, len(state_dict))
