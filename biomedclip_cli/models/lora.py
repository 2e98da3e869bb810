"""LoRA adapters (through peft) on an open_clip model: which layers get them, adding them, merging them back into plain weights.

The adapters go into the model in place (peft's LoraModel injects them into the towers' modules),
so the model stays the open_clip CLIP that open_clip_train trains, checkpoints and resumes; a
checkpoint then holds the base weights and the adapters, and its `bmclip_lora` entry says how to
rebuild them. Merging folds each adapter into its layer and leaves a plain open_clip state_dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CHECKPOINT_KEY = "bmclip_lora"  # the LoRA settings, stored in every checkpoint of a LoRA run
# The attention projections of the towers BiomedCLIP-style models are built from: timm ViT blocks
# (attn.qkv, attn.proj) and Hugging Face BERT layers (query, key, value, the attention's output dense).
ATTENTION_LINEAR_SUFFIXES = ("attn.qkv", "attn.proj", "attention.self.query", "attention.self.key", "attention.self.value",
                             "attention.output.dense")
OPEN_CLIP_ATTENTION = "attn"  # open_clip's own transformer blocks: an nn.MultiheadAttention named attn
ALWAYS_TRAINED = ("logit_scale", "logit_bias")  # the loss temperature (and SigLIP's bias) stays trainable beside the adapters


@dataclass(frozen=True)
class LoraSettings:
    """The adapters of a LoRA run: rank, alpha (scale alpha/rank), dropout and the target modules (None: the attention projections)."""

    rank: int
    alpha: float
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint entry or a worker argument."""
        return {**asdict(self), "targets": list(self.targets) if self.targets else None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoraSettings:
        """The settings written by as_dict."""
        targets = values.get("targets")
        return cls(int(values["rank"]), float(values["alpha"]), float(values.get("dropout", 0.0)), tuple(targets) if targets else None)


def default_targets(model: Any) -> list[str]:
    """The attention projections of both towers, as peft target names (module-name suffixes) present in this model."""
    import torch

    found: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.MultiheadAttention) and name.split(".")[-1] == OPEN_CLIP_ATTENTION:
            found.add(OPEN_CLIP_ATTENTION)
        elif isinstance(module, torch.nn.Linear):
            found.update(suffix for suffix in ATTENTION_LINEAR_SUFFIXES if name == suffix or name.endswith("." + suffix))
    return sorted(found)


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """Put LoRA adapters into `model` in place, freeze everything else (but the logit scale), and return peft's tuner (for merging).

    Raises ValueError naming the problem when no module matches the targets or peft cannot adapt one.
    """
    from peft import LoraConfig
    from peft.tuners.lora import LoraModel

    targets = list(settings.targets or default_targets(model))
    if not targets:
        raise ValueError("no attention projections found to put LoRA adapters on; name the modules with --lora-targets")
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,  # type: ignore[arg-type]
                        target_modules=targets)  # peft annotates lora_alpha as int and scales by any number
    tuner = LoraModel(model, config, "default")
    for name, parameter in model.named_parameters():
        if name in ALWAYS_TRAINED:
            parameter.requires_grad_(True)
    return tuner


def has_lora_weights(state_dict: dict[str, Any]) -> bool:
    """Whether a state_dict holds LoRA adapters (and so cannot be loaded into a plain open_clip model)."""
    return any(".lora_A." in key for key in state_dict)


def parameter_counts(model: Any) -> tuple[int, int]:
    """The model's trainable and total parameters."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def parameters_line(model: Any, start: str) -> str:
    """Trainable / total parameters as one line for the console and the log; with frozen ones, what they were initialised from
    (`start`: the --pretrained weights, the model's own, or a random initialisation)."""
    trainable, total = parameter_counts(model)
    line = f"trainable parameters {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"
    return line if trainable == total else f"{line}; the frozen {total - trainable:,} are {start}"
