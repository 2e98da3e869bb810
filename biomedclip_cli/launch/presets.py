"""--preset fast / memory: bundles of open_clip options chosen from the hardware and the model.

A preset only fills in options the user left alone (a value typed on the command line or in the YAML
file always wins) and never changes the objective, the data or the hyperparameters, with one
documented exception: patch dropout in `fast` (FLIP, arXiv 2212.00794), which trains on half of each
image's patches. `memory` changes nothing that is learned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from biomedclip_cli.config import Precision, Preset, TrainConfig, flag

FAST_PATCH_DROPOUT = 0.5
DISTRIBUTED_LOSS = ("local_loss", "gather_with_grad")


@dataclass(frozen=True)
class Hardware:
    """What a preset depends on: GPUs per node (0: CPU), bfloat16 support (None: unknown here), processes in all."""

    gpus: int
    bf16: bool | None
    world_size: int


@dataclass
class PresetChoice:
    """The options a preset sets (field -> value), and why each option was or was not set, for the user to read."""

    preset: Preset
    updates: dict[str, object] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def set(self, name: str, value: object, why: str) -> None:
        """Set a field and say why."""
        self.updates[name] = value
        shown = flag(name) if value is True else f"{flag(name)} {getattr(value, 'value', value)}"
        self.chosen.append(f"{shown} ({why})" if why else shown)

    def summary(self) -> str:
        """One line: what the preset set, then what it left out and why."""
        text = f"preset {self.preset.value}: " + (", ".join(self.chosen) or "nothing to set")
        return text + (f"; left out: {'; '.join(self.left_out)}" if self.left_out else "")


def _precision(choice: PresetChoice, config: TrainConfig, hardware: Hardware) -> None:
    if config.precision is not Precision.auto:
        choice.left_out.append(f"{flag('precision')} (yours: {config.precision.value})")
    elif hardware.gpus == 0:
        choice.left_out.append(f"{flag('precision')} amp_bf16 (no GPU)")
    elif hardware.bf16:
        choice.set("precision", Precision.amp_bf16, "GPU compute capability >= 8.0")
    else:
        reason = "GPU older than compute capability 8.0" if hardware.bf16 is False else "cannot tell whether the GPUs support bf16 here"
        choice.left_out.append(f"{flag('precision')} amp_bf16 ({reason}; amp stays)")


def _distributed_loss(choice: PresetChoice, given: set[str], hardware: Hardware) -> None:
    if given & set(DISTRIBUTED_LOSS):
        choice.left_out.append(f"{flag('local_loss')} {flag('gather_with_grad')} (yours)")
    elif hardware.world_size > 1:
        choice.set("local_loss", True, "")
        choice.set("gather_with_grad", True, f"{hardware.world_size} processes; same gradients, less memory")
    else:
        choice.left_out.append(f"{flag('local_loss')} {flag('gather_with_grad')} (one process)")


def _fast(choice: PresetChoice, config: TrainConfig, given: set[str], hardware: Hardware, vit: bool | None) -> None:
    if "force_patch_dropout" in given:
        choice.left_out.append(f"{flag('force_patch_dropout')} (yours: {config.force_patch_dropout})")
    elif vit:
        choice.set("force_patch_dropout", FAST_PATCH_DROPOUT,
                   "ViT image tower; changes what is learned: finish with --force-patch-dropout 0")
    else:
        reason = f"'{config.model}' has no ViT image tower" if vit is False else f"config of '{config.model}' not on this machine"
        choice.left_out.append(f"{flag('force_patch_dropout')} ({reason})")
    if "torchcompile" in given:
        choice.left_out.append(f"{flag('torchcompile')} (yours)")
    elif hardware.gpus > 0:
        choice.set("torchcompile", True, "")
    else:
        choice.left_out.append(f"{flag('torchcompile')} (no GPU: compiling on the CPU costs more than it saves)")


def _memory(choice: PresetChoice, given: set[str]) -> None:
    if "grad_checkpointing" in given:
        choice.left_out.append(f"{flag('grad_checkpointing')} (yours)")
    else:
        choice.set("grad_checkpointing", True, "recomputes activations in the backward pass")


def preset_choice(config: TrainConfig, given: set[str], hardware: Hardware, vit: bool | None) -> PresetChoice:
    """The options `config.preset` sets for this hardware and model, leaving alone every field in `given` (what the user typed)."""
    choice = PresetChoice(config.preset)
    if config.preset is Preset.none:
        return choice
    _precision(choice, config, hardware)
    if config.preset is Preset.fast:
        _fast(choice, config, given, hardware, vit)
    else:
        _memory(choice, given)
    _distributed_loss(choice, given, hardware)
    return choice
