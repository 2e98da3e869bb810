"""open_clip's table of pretrained weights (model, tag) and where they come from, read without importing torch.

`import open_clip` imports torch, timm and transformers (about 6 s on a workstation, 10 s or more on a
busy 2-core machine); its table of pretrained tags lives in `open_clip/pretrained.py`, which needs
none of them. That file is run here as a module of a stand-in package, so its own code builds the
table (the `-quickgelu` copies included) and its own functions answer, exactly as installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from biomedclip_cli.hub.paths import cached_hub_file
from biomedclip_cli.models.config_lookup import open_clip_folder

STAND_IN_PACKAGE = "_bmclip_open_clip_tables"
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
URL_CACHE = Path("~/.cache/clip")


@dataclass(frozen=True)
class PretrainedWeights:
    """One (model, tag) pair of open_clip's table and where its weights are downloaded from."""

    model: str
    tag: str
    hf_repo: str | None
    hf_filename: str | None
    url: str | None
    quick_gelu: bool


def _pretrained_module_without_torch(folder: Path) -> types.ModuleType:
    """open_clip/pretrained.py run inside a stand-in package, so `open_clip/__init__.py` (and torch) never load.

    Its optional `import safetensors.torch` is answered with ImportError while it runs; that only
    switches off a download preference this module never uses.
    """
    package = types.ModuleType(STAND_IN_PACKAGE)
    package.__path__ = [str(folder)]
    sys.modules.setdefault(STAND_IN_PACKAGE, package)
    blocked = "safetensors.torch" not in sys.modules
    if blocked:
        sys.modules["safetensors.torch"] = None  # type: ignore[assignment]
    try:
        spec = importlib.util.spec_from_file_location(f"{STAND_IN_PACKAGE}.pretrained", folder / "pretrained.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        if blocked:
            del sys.modules["safetensors.torch"]


@lru_cache(maxsize=1)
def _pretrained_module() -> types.ModuleType | None:
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"].pretrained
    folder = open_clip_folder()
    if folder is None:
        return None
    try:
        return _pretrained_module_without_torch(folder)
    except Exception:  # a future open_clip whose table needs more: import it the ordinary way
        import open_clip

        return open_clip.pretrained


def _weights(model: str, tag: str, cfg: dict[str, Any]) -> PretrainedWeights:
    hub = cfg.get("hf_hub") or ""
    repo, filename = os.path.split(hub) if hub else (None, None)
    return PretrainedWeights(model, tag, repo or None, filename or None, cfg.get("url") or None, bool(cfg.get("quick_gelu")))


def pretrained_weights() -> list[PretrainedWeights] | None:
    """Every (model, tag) pair open_clip can download, in open_clip's order; None when open_clip is not installed."""
    module = _pretrained_module()
    if module is None:
        return None
    return [_weights(model, tag, module.get_pretrained_cfg(model, tag)) for model, tag in module.list_pretrained()]


def tags_of(model: str) -> list[str] | None:
    """The pretrained tags open_clip knows for `model` (empty for none); None when open_clip is not installed."""
    module = _pretrained_module()
    return None if module is None else list(module.list_pretrained_tags_by_model(model))


def cached_weights(weights: PretrainedWeights) -> Path | None:
    """Where open_clip would find these weights without downloading them, or None.

    open_clip prefers the hub copy (its safetensors twin first) and falls back to the URL, which it
    caches in ~/.cache/clip.
    """
    if weights.hf_repo:
        filename = weights.hf_filename or HF_WEIGHTS_NAME
        candidates = [HF_SAFE_WEIGHTS_NAME, filename] if filename == HF_WEIGHTS_NAME else [filename]
        for candidate in candidates:
            found = cached_hub_file(weights.hf_repo, candidate)
            if found is not None:
                return found
    if weights.url:
        local = URL_CACHE.expanduser() / os.path.basename(weights.url)
        if local.is_file():
            return local
    return None
