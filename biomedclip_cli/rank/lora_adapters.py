"""LoRA inside open_clip_train: the model open_clip builds gets its adapters before open_clip locks, wraps and optimises it.

open_clip_train's main builds the model with `create_model_and_transforms` and then only trains
parameters that require gradients, so adding the adapters right after that call is all LoRA
needs; DDP, checkpoints and resume then work on the adapted model as on any other (the optimizer
state holds the adapters only). Every epoch checkpoint also carries the settings, so that eval and
export can rebuild the adapters from the file alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from biomedclip_cli.models.lora import CHECKPOINT_KEY, LoraSettings, add_lora, default_targets


def with_lora(create_model_and_transforms: Callable[..., Any], settings: LoraSettings) -> Callable[..., Any]:
    """open_clip's create_model_and_transforms whose first model (the one trained; a later one is a distillation teacher) gets adapters."""
    adapted = False

    def create(*args: Any, **kwargs: Any) -> Any:
        nonlocal adapted
        built = create_model_and_transforms(*args, **kwargs)
        if not adapted:
            adapted = True
            model = built[0]
            targets = settings.targets or tuple(default_targets(model))
            add_lora(model, replace(settings, targets=targets))
            logging.info(f"bmclip: LoRA rank {settings.rank}, alpha {settings.alpha:g}, dropout {settings.dropout:g} on "
                         f"{', '.join(targets)}")
        return built

    return create


def checkpoint_entries(settings: LoraSettings | None) -> dict[str, Any]:
    """What bmclip adds to every epoch checkpoint dict: the LoRA settings of a LoRA run."""
    return {CHECKPOINT_KEY: settings.as_dict()} if settings else {}
