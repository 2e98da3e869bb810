"""Facts about open_clip models without building one: sizes from the JSON configs, parameter counts from a table.

Image size, embedding width and text context come from the model's JSON config (open_clip's and
bmclip's). Parameter counts and checkpoint signatures (number of state_dict tensors and of their
elements) need a built model, so they come from `facts.json`, measured once per open_clip
release by building every config on PyTorch's meta device (no memory, no weights):

    python -m biomedclip_cli.models.facts      # rewrites biomedclip_cli/models/facts.json (a few minutes)

Configs whose text tower is a Hugging Face model need its config from the hub to be built and are
measured only where the hub is reachable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from biomedclip_cli.models.config_lookup import model_config

FACTS_FILE = Path(__file__).resolve().parent / "facts.json"


@dataclass(frozen=True)
class MeasuredFacts:
    """What building a model tells: its parameters and the shape of its state_dict (its checkpoint signature)."""

    params: int
    state_tensors: int
    state_elements: int


@dataclass(frozen=True)
class ModelFacts:
    """What a user picks a model by: size, input resolution, embedding width, text context."""

    name: str
    image_size: int | None
    embed_dim: int | None
    context_length: int | None
    params: int | None


def facts_from_config(name: str, config: dict[str, Any], params: int | None) -> ModelFacts:
    """The facts a model config states (the `model_cfg` of a hub open_clip_config.json has the same form)."""
    image_size = config.get("vision_cfg", {}).get("image_size")
    if isinstance(image_size, list):
        image_size = image_size[0]
    return ModelFacts(name, image_size, config.get("embed_dim"), config.get("text_cfg", {}).get("context_length"), params)


@lru_cache(maxsize=1)
def measured_facts() -> dict[str, MeasuredFacts]:
    """The table of measured parameter counts and checkpoint signatures, by model name."""
    if not FACTS_FILE.is_file():
        return {}
    table = json.loads(FACTS_FILE.read_text(encoding="utf-8"))
    return {name: MeasuredFacts(**values) for name, values in table["models"].items()}


def model_facts(name: str) -> ModelFacts | None:
    """The facts of a model name from its config file and the measured table, or None for an unknown name."""
    config = model_config(name)
    if config is None:
        return None
    measured = measured_facts().get(name)
    return facts_from_config(name, config, measured.params if measured else None)


def models_with_signature(state_elements: int) -> list[str]:
    """Model names whose state_dict holds exactly this many elements (a checkpoint's likely architecture)."""
    return sorted(name for name, facts in measured_facts().items() if facts.state_elements == state_elements)


def meta_model(name: str) -> Any:
    """The open_clip model `name` built on the meta device: real modules and shapes, no memory, no weights."""
    import logging

    import open_clip
    import torch

    from biomedclip_cli.models.configs import register_with_open_clip

    register_with_open_clip()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights were loaded: none were asked for
    try:
        with torch.device("meta"):
            return open_clip.create_model(name, device="meta", pretrained_text=False)
    finally:
        logging.disable(previous)


def measure(name: str) -> MeasuredFacts:
    """Build `name` on the meta device and count its parameters and state_dict."""
    model = meta_model(name)
    state = model.state_dict()
    return MeasuredFacts(sum(p.numel() for p in model.parameters()), len(state), sum(t.numel() for t in state.values()))


def main() -> None:
    """Measure every model config open_clip and bmclip have and rewrite facts.json; prints what it could not build."""
    import warnings

    import open_clip

    from biomedclip_cli.models.configs import register_with_open_clip

    warnings.simplefilter("ignore")
    register_with_open_clip()
    table: dict[str, dict[str, int]] = {}
    for name in open_clip.list_models():
        try:
            table[name] = asdict(measure(name))
        except Exception as exc:  # a tower whose config lives on the hub, unreachable here
            print(f"not measured: {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}", file=sys.stderr)
    payload = {"open_clip_version": open_clip.__version__, "models": table}
    FACTS_FILE.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{FACTS_FILE}: {len(table)} models measured")


if __name__ == "__main__":
    main()
