"""Where an open_clip model's JSON config is found, without importing open_clip (which imports torch).

A plain --model name is looked up in open_clip's folder of configs and in bmclip's, the way open_clip's
registry does: it reads its own folder first and each folder added with `add_model_config` after it,
a later file of the same name replacing an earlier one. bmclip adds its folder last, so bmclip's
file wins. An `hf-hub:<repo>` model's config is the repo's open_clip_config.json at `main`, read from
the Hugging Face cache (nothing is downloaded), which is where open_clip would find it; a
`local-dir:<folder>` model's is the folder's open_clip_config.json (open_clip 3.x's scheme for a
model on disk, such as a hub repo copied to a cluster without internet).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from biomedclip_cli.hub.paths import cached_hub_file
from biomedclip_cli.models import configs as model_configs

HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
HUB_CONFIG_FILE = "open_clip_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")  # the files open_clip's local-dir loader takes as weights


def brings_own_weights(model: str) -> bool:
    """Whether a --model name carries its config and weights with it (hf-hub:<repo> or local-dir:<folder>),
    so --pretrained does not apply."""
    return model.startswith((HUB_PREFIX, LOCAL_PREFIX))


def local_folder(model: str) -> Path | None:
    """The folder of a local-dir:<folder> model name; None for any other name."""
    return Path(model.removeprefix(LOCAL_PREFIX)) if model.startswith(LOCAL_PREFIX) else None


def folder_weights(folder: Path) -> list[Path]:
    """The weight files in a model folder, in the order open_clip's local-dir loader prefers them (safetensors first)."""
    found = sorted(path for path in folder.glob("*") if path.suffix in WEIGHT_SUFFIXES and path.is_file())
    return sorted(found, key=lambda path: path.suffix != ".safetensors")


def open_clip_folder() -> Path | None:
    """The installed open_clip package's folder, found without importing it; None when open_clip is not installed."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def config_folders() -> list[Path]:
    """The folders of model configs in the order open_clip's registry reads them (a later file of the same name wins)."""
    package = open_clip_folder()
    return [*([package / "model_configs"] if package is not None else []), model_configs.FOLDER]


def known_model_names() -> list[str] | None:
    """Names accepted by --model (open_clip's configs plus bmclip's), or None when open_clip is not installed."""
    if open_clip_folder() is None:
        return None
    return sorted({path.stem for folder in config_folders() for path in folder.glob("*.json")})


def model_config_path(model: str) -> Path | None:
    """The JSON file open_clip would build `model` from: the winning config file,
    a local-dir: folder's or an hf-hub: repo's cached config; None when absent."""
    if model.startswith(HUB_PREFIX):
        return cached_hub_file(model.removeprefix(HUB_PREFIX), HUB_CONFIG_FILE)
    folder = local_folder(model)
    if folder is not None:
        return folder / HUB_CONFIG_FILE if (folder / HUB_CONFIG_FILE).is_file() else None
    found = [folder / f"{model}.json" for folder in config_folders() if (folder / f"{model}.json").is_file()]
    return found[-1] if found else None


def model_config(model: str) -> dict[str, Any] | None:
    """The model config (embed_dim, vision_cfg, text_cfg) of a --model name, or None when its file is not here or unreadable.

    A hub repo's (or local folder's) open_clip_config.json holds it under `model_cfg`.
    """
    path = model_config_path(model)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model_cfg", config) if isinstance(config, dict) else None
