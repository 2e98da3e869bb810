"""A LoRA checkpoint becomes plain open_clip weights: `bmclip export` merges the adapters, open_clip alone loads the file."""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from biomedclip_cli.models.configs import register_with_open_clip
from biomedclip_cli.models.lora import CHECKPOINT_KEY, LoraSettings, add_lora, default_targets, has_lora_weights


def lora_checkpoint(path: Path) -> torch.nn.Module:
    """A bmclip-tiny LoRA checkpoint as training writes it (adapters set to non-zero values); returns the adapted model."""
    register_with_open_clip()
    torch.manual_seed(0)
    model = open_clip.create_model("bmclip-tiny")
    settings = LoraSettings(rank=4, alpha=8.0)
    add_lora(model, settings)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                CHECKPOINT_KEY: settings.as_dict()}, path)
    return model.eval()


def test_the_default_targets_of_open_clips_own_towers_are_their_attention_blocks():
    register_with_open_clip()
    assert default_targets(open_clip.create_model("bmclip-tiny")) == ["attn"]


def test_an_exported_lora_checkpoint_loads_into_plain_open_clip_and_computes_the_same(invoke, tmp_path: Path):
    adapted = lora_checkpoint(tmp_path / "epoch_1.pt")
    result = invoke("export", str(tmp_path / "epoch_1.pt"), "--model", "bmclip-tiny", "--output", str(tmp_path / "merged.pt"))
    assert result.exit_code == 0, result.stderr
    assert "LoRA adapters merged" in result.stdout and 'pretrained="' in result.stdout
    merged = torch.load(tmp_path / "merged.pt", weights_only=True)["state_dict"]
    assert not has_lora_weights(merged)
    plain, _, _ = open_clip.create_model_and_transforms("bmclip-tiny", pretrained=str(tmp_path / "merged.pt"))
    images, texts = torch.randn(2, 3, 64, 64), torch.randint(1, 100, (2, 32))
    with torch.no_grad():
        assert torch.allclose(plain.eval().encode_image(images), adapted.encode_image(images), atol=1e-5)
        assert torch.allclose(plain.encode_text(texts), adapted.encode_text(texts), atol=1e-5)


def test_export_refuses_to_overwrite_and_a_file_for_a_folder_model(invoke, tmp_path: Path):
    lora_checkpoint(tmp_path / "epoch_1.pt")
    (tmp_path / "taken.pt").write_bytes(b"x")
    result = invoke("export", str(tmp_path / "epoch_1.pt"), "--model", "bmclip-tiny", "--output", str(tmp_path / "taken.pt"))
    assert result.exit_code == 2 and f"--output: '{tmp_path / 'taken.pt'}' already exists" in result.stderr
    result = invoke("export", str(tmp_path / "epoch_1.pt"), "--model", "local-dir:/models/x", "--output", str(tmp_path / "out.pt"))
    assert result.exit_code == 2 and "loads its weights from a folder" in result.stderr
