"""The models a run can start from: open_clip's pretrained weights and curated biomedical models.

Each entry carries the exact `--model` / `--pretrained` values for `bmclip train`, the facts a user
chooses by (parameters, image size, embedding width) and whether the weights are already in the
local cache. Nothing here touches the network or imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from biomedclip_cli.hub.paths import cached_hub_file
from biomedclip_cli.models.config_lookup import LOCAL_PREFIX, folder_weights, model_config, model_config_path
from biomedclip_cli.models.facts import ModelFacts, facts_from_config, model_facts
from biomedclip_cli.models.pretrained_tags import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME, cached_weights, pretrained_weights

OPEN_CLIP, BIOMEDICAL, LOCAL = "open_clip", "biomedical", "local"


@dataclass(frozen=True)
class BiomedicalModel:
    """A biomedical CLIP people fine-tune from, and how open_clip loads it.

    Either an open_clip hub model (`model` is `hf-hub:<repo>`, config and weights on the hub), or a
    raw training checkpoint (`checkpoint_file` in `hub_repo`) for the open_clip architecture `model`.
    """

    title: str
    model: str
    note: str
    hub_repo: str
    architecture: str | None = None
    checkpoint_file: str | None = None
    stated: ModelFacts | None = None


CURATED = (
    BiomedicalModel(
        "BiomedCLIP", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        "Microsoft; 15M PubMed Central figure-caption pairs; ViT-B/16 image tower, PubMedBERT text tower",
        "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        stated=ModelFacts("BiomedCLIP", image_size=224, embed_dim=512, context_length=256, params=None)),
    BiomedicalModel(
        "BMC-CLIP", "ViT-L-14",
        "BIOMEDICA; 24M PubMed Central pairs; ViT-L-14 continued from commonpool_xl_clip_s13b_b90k; a raw training checkpoint",
        "BIOMEDICA/BMC_CLIP_CF", architecture="ViT-L-14", checkpoint_file="BMC_CLIP_CF.pt"),
    BiomedicalModel(
        "QuiltNet-B-32", "hf-hub:wisdomik/QuiltNet-B-32",
        "Quilt-1M histopathology image-text pairs; CLIP ViT-B/32",
        "wisdomik/QuiltNet-B-32", architecture="ViT-B-32"),
)


@dataclass(frozen=True)
class CatalogEntry:
    """One starting point for `bmclip train`: the values to pass, its facts, and whether it is cached here."""

    section: str
    title: str
    model: str
    pretrained: str | None
    facts: ModelFacts | None
    cached: Path | None
    source: str
    note: str = ""
    download: str = ""

    def train_flags(self) -> str:
        """The `--model` / `--pretrained` flags to paste into `bmclip train`."""
        flags = f"--model {self.model}"
        return f"{flags} --pretrained {self.pretrained}" if self.pretrained else flags

    def as_dict(self) -> dict[str, Any]:
        """Plain values for --json."""
        facts = self.facts
        return {"section": self.section, "title": self.title, "model": self.model, "pretrained": self.pretrained,
                "train_flags": self.train_flags(), "params": facts.params if facts else None,
                "image_size": facts.image_size if facts else None, "embed_dim": facts.embed_dim if facts else None,
                "context_length": facts.context_length if facts else None, "cached": self.cached is not None,
                "cached_path": str(self.cached) if self.cached else None, "source": self.source, "note": self.note,
                "download": self.download or None}

    def matches(self, text: str) -> bool:
        """Whether `text` occurs (case-insensitively) in the name, tag, title or note."""
        haystack = " ".join([self.title, self.model, self.pretrained or "", self.note]).lower()
        return text.lower() in haystack


def _hub_model_facts(model: BiomedicalModel) -> ModelFacts | None:
    """Facts from the hub model's config when it is cached, else from its architecture or its stated facts."""
    config = model_config(model.model)
    if config is not None:
        architecture = model_facts(model.architecture) if model.architecture else None
        return facts_from_config(model.title, config, architecture.params if architecture else None)
    if model.architecture:
        facts = model_facts(model.architecture)
        return replace(facts, name=model.title) if facts else None
    return model.stated


def _curated_entry(model: BiomedicalModel) -> CatalogEntry:
    if model.checkpoint_file:
        local = cached_hub_file(model.hub_repo, model.checkpoint_file)
        facts = model_facts(model.architecture or model.model)
        return CatalogEntry(BIOMEDICAL, model.title, model.model, str(local) if local else model.checkpoint_file,
                            replace(facts, name=model.title) if facts else None, local, f"hf.co/{model.hub_repo}", model.note,
                            download="" if local else f"hf download {model.hub_repo} {model.checkpoint_file}")
    weights = next((found for name in (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME) if (found := cached_hub_file(model.hub_repo, name))), None)
    cached = weights if weights and model_config_path(model.model) else None
    return CatalogEntry(BIOMEDICAL, model.title, model.model, None, _hub_model_facts(model), cached, f"hf.co/{model.hub_repo}", model.note)


def biomedical_entries() -> list[CatalogEntry]:
    """The curated biomedical models, with the cache looked up now."""
    return [_curated_entry(model) for model in CURATED]


def open_clip_entries() -> list[CatalogEntry]:
    """open_clip's pretrained (model, tag) pairs in its own order; empty when open_clip is not installed."""
    entries = []
    facts_by_model: dict[str, ModelFacts | None] = {}
    for weights in pretrained_weights() or []:
        if weights.model not in facts_by_model:
            facts_by_model[weights.model] = model_facts(weights.model)
        source = f"hf.co/{weights.hf_repo}" if weights.hf_repo else (weights.url or "")
        entries.append(CatalogEntry(OPEN_CLIP, f"{weights.model} {weights.tag}", weights.model, weights.tag,
                                    facts_by_model[weights.model], cached_weights(weights), source))
    return entries


def weights_parameters(path: Path) -> int | None:
    """The number of parameters in a safetensors weights file, read from its header (None for other formats)."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as weights:
        return sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())  # noqa: SIM118 - safe_open is not a mapping


def local_entry(folder: Path) -> CatalogEntry:
    """A model folder on disk (checked already) as a `--model local-dir:FOLDER` starting point."""
    model = LOCAL_PREFIX + str(folder.resolve())
    config = model_config(model) or {}
    weights = folder_weights(folder)[0]
    facts = facts_from_config(folder.name, config, weights_parameters(weights))
    return CatalogEntry(LOCAL, folder.name, model, None, facts, weights, str(folder.resolve()), "a model folder on this machine")


def catalog(text: str | None = None, biomedical_only: bool = False, cached_only: bool = False,
            folders: list[Path] | None = None) -> list[CatalogEntry]:
    """The model folders given, the biomedical models, then open_clip's pairs, narrowed by a search text and the cache."""
    entries = [local_entry(folder) for folder in folders or []]
    entries += biomedical_entries() + ([] if biomedical_only else open_clip_entries())
    if text:
        entries = [entry for entry in entries if entry.matches(text)]
    if cached_only:
        entries = [entry for entry in entries if entry.cached is not None]
    return entries
