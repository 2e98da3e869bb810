"""Model checks: the name is one open_clip (or bmclip) knows, the pretrained file exists."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.hub.paths import cached_hub_file
from biomedclip_cli.models.config_lookup import (
    HUB_CONFIG_FILE,
    HUB_PREFIX,
    WEIGHT_SUFFIXES,
    brings_own_weights,
    folder_weights,
    known_model_names,
    local_folder,
    model_config,
)
from biomedclip_cli.problems import Problem, error, warning

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
TIMM_VIT_PREFIXES = ("vit_", "deit_", "eva")


SIGLIP_FLAG = "--siglip"  # open_clip_train's flag for the sigmoid loss (passed after --)

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


def check_local_folder(folder: Path, option: str = "--model") -> list[Problem]:
    """Problems with a local-dir: model folder: it must hold open_clip_config.json (with a model_cfg) and a weights file."""
    shown = f"{option} local-dir:{folder}" if option == "--model" else f"{option} {folder}"
    fix = "copy the whole hub repo there (hf download <repo> --local-dir FOLDER), or point at the folder that has it"
    if not folder.is_dir():
        return [error(shown, f"folder '{folder}' does not exist", "pass the folder holding open_clip_config.json and the weights",
                      local_only=True)]
    config_file = folder / HUB_CONFIG_FILE
    if not config_file.is_file():
        return [error(shown, f"'{folder}' has no {HUB_CONFIG_FILE}", fix)]
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [error(str(config_file), f"is not valid JSON ({exc})", "restore the file from the model's repo")]
    if not isinstance(config, dict) or not isinstance(config.get("model_cfg"), dict):
        return [error(str(config_file), "has no 'model_cfg' mapping, which open_clip builds the model from",
                      "restore the file from the model's repo")]
    if not folder_weights(folder):
        return [error(shown, f"'{folder}' has no weights file (open_clip looks for *{', *'.join(WEIGHT_SUFFIXES)}, "
                             "e.g. open_clip_model.safetensors or open_clip_pytorch_model.bin)", fix)]
    return []


def check_text_tower_source(model: str, config: dict[str, Any]) -> list[Problem]:
    """Problems finding a Hugging Face text tower's config, which open_clip reads from the hub (or its cache) by `hf_model_name`.

    BiomedCLIP-style models name their text tower by a hub id even when the model itself is on disk,
    so a node without internet needs that id's config.json in its Hugging Face cache (or a folder path).
    """
    name = config.get("text_cfg", {}).get("hf_model_name")
    if not name or Path(name).is_dir() or cached_hub_file(name, "config.json") is not None:
        return []
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    message = f"its text tower '{name}' is not in the Hugging Face cache; open_clip downloads its config.json at start"
    fix = f"on a machine with internet: hf download {name} config.json (the cache must be shared with the nodes)"
    return [error("--model", f"{model}: {message}, and HF_HUB_OFFLINE is set", fix) if offline
            else warning("--model", f"{model}: {message}", fix)]


def check_model(config: TrainConfig) -> list[Problem]:
    """Problems with --model and --pretrained (a `--pretrained hf-hub:` id is expected to be resolved into --model already)."""
    problems: list[Problem] = []
    if brings_own_weights(config.model) and config.pretrained:
        return [error("--pretrained", f"{config.model} brings its own weights, so --pretrained '{config.pretrained}' would be ignored",
                      "drop --pretrained")]
    folder = local_folder(config.model)
    if folder is not None:
        problems = check_local_folder(folder)
    elif not config.model.startswith(HUB_PREFIX):
        names = known_model_names()
        if names is None:
            problems.append(warning("--model", f"open_clip is not installed here, so '{config.model}' was not checked",
                                    "install bmclip[train] to check model names"))
        elif config.model not in names:
            close = difflib.get_close_matches(config.model, names, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "run bmclip list-models to see the names"
            problems.append(error("--model", f"unknown model '{config.model}'", hint))
    if brings_own_weights(config.model) and not problems:
        model_cfg = model_config(config.model)
        problems.extend(check_text_tower_source(config.model, model_cfg) if model_cfg else [])
    if config.pretrained and not looks_like_path(config.pretrained) and not problems:
        problems.extend(check_pretrained_tag(config.model, config.pretrained))
    if config.pretrained and looks_like_path(config.pretrained):
        path = Path(config.pretrained)
        if not path.exists():
            problems.append(error("--pretrained", f"file '{path}' does not exist",
                                  "pass a checkpoint file or an open_clip tag such as openai",
                                  local_only=True))
        elif path.is_dir():
            problems.append(error("--pretrained", f"'{path}' is a folder, open_clip needs a checkpoint file",
                                  "pass the .pt/.bin/.safetensors file inside it, or the folder as --model local-dir:FOLDER"))
    return problems


def check_fine_tuning_traps(config: TrainConfig) -> list[Problem]:
    """Fine-tuning that cannot work as meant: frozen towers or LoRA adapters over random weights (the frozen part never learns),
    and a SigLIP model (its weights have a logit bias) trained without open_clip's --siglip loss, or the reverse."""
    problems: list[Problem] = []
    freezing = [flag for flag, on in (("--lora-rank", config.lora_rank), ("--lock-image", config.lock_image),
                                      ("--lock-text", config.lock_text)) if on]
    if freezing and not config.pretrained and not brings_own_weights(config.model):
        problems.append(warning(freezing[0], f"freezes weights of {config.model} that no --pretrained gives, so they stay random and "
                                             "the run trains on top of noise", "pass --pretrained TAG or FILE (or a model that "
                                             "brings its own weights, hf-hub:/local-dir:)"))
    model_cfg = model_config(config.model)
    siglip_model = model_cfg is not None and "init_logit_bias" in model_cfg
    siglip_loss = SIGLIP_FLAG in config.extra_args
    if model_cfg is not None and siglip_model != siglip_loss:
        problems.append(error(SIGLIP_FLAG, f"{config.model} is a SigLIP model (its weights have a logit bias) and needs open_clip's "
                                           "SigLIP loss; the CLIP loss leaves the bias unused, which stops DDP", f"add -- {SIGLIP_FLAG}")
                        if siglip_model else
                        error(SIGLIP_FLAG, f"trains with the SigLIP loss, but {config.model} has no logit bias for it",
                              f"drop {SIGLIP_FLAG}, or pick a SigLIP model (bmclip list-models --filter siglip)"))
    return problems


def check_val_zeroshot(config: TrainConfig) -> list[Problem]:
    """Problems with --val-zeroshot: the CSV must have the filepath and label columns, images that exist, and two classes or more."""
    if not config.val_zeroshot:
        return []
    from biomedclip_cli.models.evaluation import read_eval_set
    from biomedclip_cli.problems import ProblemFound

    path = Path(config.val_zeroshot)
    try:
        found = read_eval_set(path, "filepath", config.val_zeroshot_label_column, None)
    except ProblemFound as problem:
        found_problem = problem.problem
        option = "--val-zeroshot-label-column" if found_problem.subject == "--label-column" else "--val-zeroshot"
        return [error(option, found_problem.message, found_problem.fix.replace("--label-column", "--val-zeroshot-label-column"),
                      local_only=found_problem.local_only)]
    classes = sorted(set(found.labels or []))
    if len(classes) < 2:
        return [error("--val-zeroshot",
                      f"'{path}' has {len(classes)} class in '{config.val_zeroshot_label_column}', zero-shot needs two or more",
                      "add images of other classes")]
    return []


def check_pretrained_file(config: TrainConfig) -> list[Problem]:
    """Problems loading a local --pretrained file into --model (reads tensor shapes only; imports torch and open_clip)."""
    if not config.pretrained or not looks_like_path(config.pretrained) or not Path(config.pretrained).is_file():
        return []
    if brings_own_weights(config.model) or known_model_names() is None:
        return []
    from biomedclip_cli.models.checkpoint_fit import check_checkpoint_fits

    return check_checkpoint_fits(Path(config.pretrained), config.model)
