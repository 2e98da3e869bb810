"""Model checks: the name is one open_clip (or bmclip) knows, the pretrained file exists."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.model_configs import FOLDER as BMCLIP_MODEL_CONFIGS
from biomedclip_cli.problems import Problem, error, warning

HUB_PREFIX = "hf-hub:"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def open_clip_model_config_dir() -> Path | None:
    """open_clip's folder of model configs, found without importing open_clip (which imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model_configs"


def known_model_names() -> list[str] | None:
    """Names accepted by --model (open_clip's configs plus bmclip's), or None when open_clip is not installed."""
    folder = open_clip_model_config_dir()
    if folder is None:
        return None
    return sorted(p.stem for p in [*folder.glob("*.json"), *BMCLIP_MODEL_CONFIGS.glob("*.json")])


def looks_like_path(value: str) -> bool:
    """Whether a --pretrained value names a file rather than an open_clip tag."""
    return "/" in value or value.endswith(CHECKPOINT_SUFFIXES) or Path(value).exists()


def check_model(config: TrainConfig) -> list[Problem]:
    """Problems with --model and --pretrained."""
    problems: list[Problem] = []
    if not config.model.startswith(HUB_PREFIX):
        names = known_model_names()
        if names is None:
            problems.append(warning("--model", f"open_clip is not installed here, so '{config.model}' was not checked",
                                    "install bmclip[train] to check model names"))
        elif config.model not in names:
            close = difflib.get_close_matches(config.model, names, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "run bmclip list-models to see the names"
            problems.append(error("--model", f"unknown model '{config.model}'", hint))
    if config.pretrained and looks_like_path(config.pretrained):
        path = Path(config.pretrained)
        if not path.exists():
            problems.append(error("--pretrained", f"file '{path}' does not exist", "pass a checkpoint file or an open_clip tag such as openai",
                                  local_only=True))
        elif path.is_dir():
            problems.append(error("--pretrained", f"'{path}' is a folder, open_clip needs a checkpoint file",
                                  "pass the .pt/.bin/.safetensors file inside it"))
    return problems
