"""Model checks: the name is one open_clip (or bmclip) knows, the pretrained file exists."""

from __future__ import annotations

import difflib
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.models.config_lookup import HUB_PREFIX, known_model_names, model_config
from biomedclip_cli.problems import Problem, error, warning

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
TIMM_VIT_PREFIXES = ("vit_", "deit_", "eva")


def image_tower_is_vit(model: str) -> bool | None:
    """Whether the model's image tower is a vision transformer (patch dropout applies), or None when its config is unknown here.

    open_clip builds its own ViT when `vision_cfg.layers` is a number, a ResNet when it is a list, and a timm
    tower when `timm_model_name` is set (ViTs among those are named vit_*, deit_*, eva*). CoCa models
    (with a `multimodal_cfg`) decode captions from the image tokens and are left out.
    """
    config = model_config(model)
    if config is None:
        return None
    vision = config.get("vision_cfg", {})
    if "multimodal_cfg" in config:
        return False
    timm_name = vision.get("timm_model_name")
    if timm_name:
        return str(timm_name).startswith(TIMM_VIT_PREFIXES)
    return isinstance(vision.get("layers"), int)


def looks_like_path(value: str) -> bool:
    """Whether a --pretrained value names a file rather than an open_clip tag."""
    return "/" in value or value.endswith(CHECKPOINT_SUFFIXES) or Path(value).exists()


def clean_tag(tag: str) -> str:
    """A pretrained tag as open_clip looks it up (lower case, dashes as underscores)."""
    return tag.lower().replace("-", "_")


def check_pretrained_tag(model: str, tag: str) -> list[Problem]:
    """Problems with --pretrained TAG: the tag must be one open_clip has weights for with this model."""
    from biomedclip_cli.models.pretrained_tags import tags_of

    tags = tags_of(model)
    if tags is None or clean_tag(tag) in tags:
        return []
    if not tags:
        return [error("--pretrained", f"open_clip has no pretrained weights for {model}, so '{tag}' is not a tag of it",
                      "pass a checkpoint file, or pick a model with weights from bmclip list-models")]
    close = difflib.get_close_matches(clean_tag(tag), tags, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"its tags: {', '.join(tags)}"
    return [error("--pretrained", f"'{tag}' is not a pretrained tag of {model}", f"{hint} (bmclip list-models --filter {model})")]


def check_model(config: TrainConfig) -> list[Problem]:
    """Problems with --model and --pretrained (a `--pretrained hf-hub:` id is expected to be resolved into --model already)."""
    problems: list[Problem] = []
    if config.model.startswith(HUB_PREFIX) and config.pretrained:
        return [error("--pretrained", f"{config.model} brings its own weights from the hub, so --pretrained '{config.pretrained}' would be ignored",
                      "drop --pretrained")]
    if not config.model.startswith(HUB_PREFIX):
        names = known_model_names()
        if names is None:
            problems.append(warning("--model", f"open_clip is not installed here, so '{config.model}' was not checked",
                                    "install bmclip[train] to check model names"))
        elif config.model not in names:
            close = difflib.get_close_matches(config.model, names, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "run bmclip list-models to see the names"
            problems.append(error("--model", f"unknown model '{config.model}'", hint))
    if config.pretrained and not looks_like_path(config.pretrained) and not problems:
        problems.extend(check_pretrained_tag(config.model, config.pretrained))
    if config.pretrained and looks_like_path(config.pretrained):
        path = Path(config.pretrained)
        if not path.exists():
            problems.append(error("--pretrained", f"file '{path}' does not exist", "pass a checkpoint file or an open_clip tag such as openai",
                                  local_only=True))
        elif path.is_dir():
            problems.append(error("--pretrained", f"'{path}' is a folder, open_clip needs a checkpoint file",
                                  "pass the .pt/.bin/.safetensors file inside it"))
    return problems


def check_pretrained_file(config: TrainConfig) -> list[Problem]:
    """Problems loading a local --pretrained file into --model (reads tensor shapes only; imports torch and open_clip)."""
    if not config.pretrained or not looks_like_path(config.pretrained) or not Path(config.pretrained).is_file():
        return []
    if config.model.startswith(HUB_PREFIX) or known_model_names() is None:
        return []
    from biomedclip_cli.models.checkpoint_fit import check_checkpoint_fits

    return check_checkpoint_fits(Path(config.pretrained), config.model)
