"""Which config file a --model name means: the one open_clip would build it from (bmclip's folder wins; hf-hub: at refs/main)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from biomedclip_cli.models import configs as model_configs
from biomedclip_cli.models.facts import model_facts
from biomedclip_cli.models.validation import image_tower_is_vit

RESNET_VIT_B_32 = {"embed_dim": 77, "vision_cfg": {"image_size": 96, "layers": [1, 1, 1, 1], "width": 64},
                   "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


def hub_snapshot(cache: Path, repo: str, commit: str, config: dict) -> None:
    """One snapshot of a hub model in a Hugging Face cache, laid out as huggingface_hub writes it."""
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))


def test_a_bmclip_config_with_the_name_of_an_open_clip_one_wins_as_in_open_clips_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "ViT-B-32.json").write_text(json.dumps(RESNET_VIT_B_32))
    monkeypatch.setattr(model_configs, "FOLDER", tmp_path)
    assert image_tower_is_vit("ViT-B-32") is False
    facts = model_facts("ViT-B-32")
    assert facts is not None and (facts.embed_dim, facts.image_size, facts.context_length) == (77, 96, 16)
    registry = subprocess.run([sys.executable, "-c", "import sys, open_clip; open_clip.add_model_config(sys.argv[1]); "
                               "print(open_clip.get_model_config('ViT-B-32')['embed_dim'])", str(tmp_path)],
                              capture_output=True, text=True, timeout=300, check=True)
    assert registry.stdout.split() == ["77"]


def test_a_hub_models_config_is_the_snapshot_refs_main_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = "lab/clip"
    hub_snapshot(tmp_path, repo, "0aaa", {"embed_dim": 512, "vision_cfg": {"timm_model_name": "vit_base_patch16_224"}, "text_cfg": {}})
    hub_snapshot(tmp_path, repo, "ffff", {"embed_dim": 1024, "vision_cfg": {"layers": [3, 4, 6, 3]}, "text_cfg": {}})
    refs = tmp_path / "models--lab--clip" / "refs"
    refs.mkdir()
    (refs / "main").write_text("0aaa")
    assert image_tower_is_vit(f"hf-hub:{repo}") is True
    (refs / "main").write_text("ffff")
    assert image_tower_is_vit(f"hf-hub:{repo}") is False
    assert image_tower_is_vit("hf-hub:not a repo id") is None
