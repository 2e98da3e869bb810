"""`--preset fast` and `--preset memory`: what each sets on which hardware, shown by --dry-run, overridable flag by flag."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from conftest import run_bmclip
from machines import machine

from biomedclip_cli.launch.launcher import WORKER_MODULE
from biomedclip_cli.launch.openclip_args import parse_with_open_clip
from biomedclip_cli.models.validation import image_tower_is_vit
from biomedclip_cli.runs.folder import epoch_checkpoints, train_progress

SYNTHETIC = ("--dataset-type", "synthetic", "--train-num-samples", "256")


def on_machine(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Put a recorded machine's nvidia-smi (tests/fixtures/nvidia_smi/<case>) first on PATH, all its GPUs visible."""
    fake = machine(Path("machine"), case)
    monkeypatch.setenv("PATH", f"{fake['PATH']}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def dry_run(invoke, *args: str):
    """The open_clip arguments of `bmclip train ARGS --dry-run` as open_clip's parser reads them, and the preset line."""
    result = invoke("train", *SYNTHETIC, *args, "--dry-run")
    assert result.exit_code == 0, result.stderr
    words = shlex.split(result.stdout)
    open_clip_args = words[words.index(WORKER_MODULE) + 2:]
    preset_lines = [line for line in result.stderr.splitlines() if line.startswith("bmclip: preset")]
    return parse_with_open_clip(open_clip_args), words, preset_lines


def test_fast_on_the_cpu_turns_on_patch_dropout_and_the_distributed_loss(invoke):
    args, words, said = dry_run(invoke, "--model", "bmclip-tiny", "--nproc-per-node", "2", "--preset", "fast")
    assert args.force_patch_dropout == 0.5 and args.local_loss and args.gather_with_grad
    assert args.precision == "fp32" and not args.torchcompile
    assert "--preset" not in words
    assert len(said) == 1 and "changes what is learned" in said[0] and "--torchcompile (no GPU" in said[0]


def test_fast_on_bf16_gpus_adds_bf16_and_torch_compile(invoke, monkeypatch):
    on_machine(monkeypatch, "8-gpus-550-cuda12.4")
    args, words, _ = dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast", "--gpus", "0,1")
    assert "--nproc-per-node=2" in words
    assert (args.precision, args.force_patch_dropout, args.torchcompile, args.local_loss, args.gather_with_grad) == (
        "amp_bf16", 0.5, True, True, True)


def test_fast_on_gpus_without_bf16_keeps_amp(invoke, monkeypatch):
    on_machine(monkeypatch, "580-cuda13.0-sm61")
    args, _, said = dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast")
    assert (args.precision, args.torchcompile, args.local_loss) == ("amp", True, False)
    assert "GPU older than compute capability 8.0" in said[0] and "(one process)" in said[0]


def test_a_driver_that_hides_compute_capability_keeps_amp(invoke, monkeypatch):
    on_machine(monkeypatch, "470-rejects-compute-cap")
    args, _, said = dry_run(invoke, "--model", "ViT-B-32", "--preset", "memory")
    assert (args.precision, args.grad_checkpointing) == ("amp", True)
    assert "cannot tell whether the GPUs support bf16" in said[0]


def test_bf16_needs_every_gpu_the_run_uses(invoke, monkeypatch):
    on_machine(monkeypatch, "2-gpus-a100-t4")
    assert dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast", "--gpus", "0")[0].precision == "amp_bf16"
    assert dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast", "--gpus", "0,1")[0].precision == "amp"
    assert dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast")[0].precision == "amp"


def test_values_you_give_win_over_the_preset(invoke, monkeypatch):
    on_machine(monkeypatch, "8-gpus-550-cuda12.4")
    args, _, said = dry_run(invoke, "--model", "ViT-B-32", "--preset", "fast", "--precision", "amp",
                            "--force-patch-dropout", "0", "--no-torchcompile", "--no-gather-with-grad")
    assert (args.precision, args.force_patch_dropout, args.torchcompile) == ("amp", 0.0, False)
    assert not args.local_loss and not args.gather_with_grad, "local loss without gathered gradients would train differently"
    assert "--precision (yours: amp)" in said[0]


def test_values_in_the_config_file_win_too(invoke):
    Path("train.yaml").write_text("model: bmclip-tiny\npreset: fast\nforce_patch_dropout: 0.25\n")
    args, _, _ = dry_run(invoke, "--config", "train.yaml")
    assert args.force_patch_dropout == 0.25


def test_fast_leaves_patch_dropout_off_for_models_without_a_vit(invoke):
    args, _, said = dry_run(invoke, "--model", "RN50", "--preset", "fast")
    assert args.force_patch_dropout is None
    assert "'RN50' has no ViT image tower" in said[0]


def test_memory_checkpoints_gradients_and_changes_nothing_that_is_learned(invoke):
    args, _, said = dry_run(invoke, "--model", "bmclip-tiny", "--nproc-per-node", "2", "--preset", "memory")
    assert args.grad_checkpointing and args.local_loss and args.gather_with_grad
    assert args.force_patch_dropout is None and not args.torchcompile
    assert "changes what is learned" not in said[0]


def test_no_preset_is_the_same_command_as_preset_none(invoke):
    plain = invoke("train", *SYNTHETIC, "--model", "bmclip-tiny", "--name", "run", "--dry-run")
    none = invoke("train", *SYNTHETIC, "--model", "bmclip-tiny", "--name", "run", "--preset", "none", "--dry-run")
    assert plain.stdout == none.stdout and "preset" not in none.stderr


def test_hub_models_are_recognised_from_the_hugging_face_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    model = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    assert image_tower_is_vit(model) is None
    snapshot = tmp_path / "models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    config = {"model_cfg": {"embed_dim": 512, "vision_cfg": {"timm_model_name": "vit_base_patch16_224"}, "text_cfg": {}}}
    (snapshot / "open_clip_config.json").write_text(json.dumps(config))
    assert image_tower_is_vit(model) is True


@pytest.mark.parametrize(("model", "vit"), [("ViT-B-32", True), ("ViT-B-16-SigLIP", True), ("EVA02-B-16", True), ("bmclip-tiny", True),
                                            ("RN50", False), ("convnext_base", False), ("coca_ViT-B-32", False), ("MobileCLIP-S1", False)])
def test_image_tower_family_comes_from_open_clips_config_files(model, vit):
    assert image_tower_is_vit(model) is vit


@pytest.mark.slow
def test_fast_trains_with_two_ranks_then_finishes_without_patch_dropout(demo_data, tmp_path: Path):
    common = ("--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--nproc-per-node", "2", "--batch-size", "16",
              "--lr", "1e-3", "--warmup", "2", "--workers", "0", "--logs", str(tmp_path), "--name", "fast", "--preset", "fast")
    masked = run_bmclip("train", *common, "--epochs", "2")
    assert masked.returncode == 0, masked.stderr[-3000:]
    params = (tmp_path / "fast" / "params.txt").read_text()
    assert "force_patch_dropout: 0.5" in params and "local_loss: True" in params and "gather_with_grad: True" in params
    unmasked = run_bmclip("train", *common, "--epochs", "3", "--force-patch-dropout", "0", "--resume", "auto")
    assert unmasked.returncode == 0, unmasked.stderr[-3000:]
    assert "force_patch_dropout: 0.0" in (tmp_path / "fast" / "params.txt").read_text()
    assert [p.name for p in epoch_checkpoints(tmp_path / "fast")] == ["epoch_1.pt", "epoch_2.pt", "epoch_3.pt"]
    progress = train_progress(tmp_path / "fast")
    assert progress[-1].epoch == 2 and progress[-1].loss < progress[0].loss
    assert all(0 <= line.data_seconds <= line.batch_seconds for line in progress), "waiting for data is part of each step"
