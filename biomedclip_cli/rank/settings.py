"""The run's settings for the ranks: the config's fields marked RANKS (config.py), as one JSON document on the worker's command line.

The launcher writes `--settings '{...}'` with the fields that differ from their defaults (none: no option at all), and every
rank reads the document back into the same TrainConfig model, so the config's own rules run on it again. Adding a setting for
the ranks is a field marked RANKS and the rank code that reads it; nothing between them changes.
"""

from __future__ import annotations

import argparse
import json

from biomedclip_cli.config import RANKS, TrainConfig, fields_for
from biomedclip_cli.models.lora import LoraSettings
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.rank.protocol import SETTINGS_OPTION, WORKER_MODULE


def settings_args(config: TrainConfig) -> list[str]:
    """The worker's own arguments for a config: its RANKS fields that are not at their defaults, as one JSON document."""
    values = config.model_dump(mode="json", include=set(fields_for(RANKS)), exclude_defaults=True)
    return [SETTINGS_OPTION, json.dumps(values, separators=(",", ":"))] if values else []


def read_worker_argv(argv: list[str]) -> tuple[TrainConfig, list[str]]:
    """The rank settings (before a `--`) and open_clip's arguments (after it, or all when there is none) of the worker's argv."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    own, open_clip_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else ([], argv)
    parser = argparse.ArgumentParser(prog=f"python -m {WORKER_MODULE}")
    parser.add_argument(SETTINGS_OPTION, type=TrainConfig.model_validate_json, default=TrainConfig(),
                        help="the run's settings for the ranks, as JSON: bmclip train's option names with underscores")
    return parser.parse_args(own).settings, open_clip_args


def lora_settings(settings: TrainConfig) -> LoraSettings | None:
    """The LoRA adapters a run asks for (--lora-rank and its options), or None."""
    if not settings.lora_rank:
        return None
    targets = tuple(name.strip() for name in settings.lora_targets.split(",") if name.strip()) if settings.lora_targets else None
    alpha = settings.lora_alpha if settings.lora_alpha is not None else 2.0 * settings.lora_rank  # twice the rank: adapters scaled by 2
    return LoraSettings(settings.lora_rank, alpha, settings.lora_dropout, targets)


def pixel_settings(settings: TrainConfig) -> PixelSettings:
    """How the ranks read images (--intensity, --max-pixels)."""
    return PixelSettings.of(settings.intensity, settings.max_pixels)
