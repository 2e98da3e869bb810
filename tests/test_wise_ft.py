"""WiSE-FT and soups on real runs: the tiny model trained on the demo (the "pretrained" start), then fine-tuned from it in full,
with LoRA adapters and with a locked image tower; scored with `bmclip eval --wise-ft`, written with `bmclip export`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import run_bmclip
from run_folders import assert_refused

from biomedclip_cli.cli import app
from biomedclip_cli.models.configs import register_with_open_clip

pytestmark = pytest.mark.slow

FINE_TUNE = ("--model", "bmclip-tiny", "--nproc-per-node", "1", "--batch-size", "20", "--lr", "1e-3", "--warmup", "2",
             "--workers", "0", "--precision", "fp32")


@pytest.fixture(scope="module")
def fine_tuned(trained_run: Path, demo_data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three runs started from the trained run's last checkpoint: full (3 epochs), LoRA and locked image tower (1 epoch each)."""
    logs = tmp_path_factory.mktemp("fine-tuned")
    start = trained_run / "checkpoints" / "epoch_6.pt"
    runs = {"full": ("--epochs", "3"), "lora": ("--epochs", "1", "--lora-rank", "4"), "locked": ("--epochs", "1", "--lock-image")}
    for name, options in runs.items():
        result = run_bmclip("train", "--train-data", str(demo_data.train_csv), *FINE_TUNE, *options, "--pretrained", str(start),
                            "--logs", str(logs), "--name", name)
        assert result.returncode == 0, result.stderr[-3000:]
        if name == "locked":  # the console says what the frozen tower holds
            assert re.search(rf"; the frozen [\d,]+ are from --pretrained {re.escape(str(start))}\n", result.stderr), result.stderr[-2000:]
    return {name: logs / name for name in runs}


def scores(*args: str) -> dict:
    result = run_bmclip("eval", *args, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def state(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's or an export's weights, without DDP's prefix."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def test_alpha_0_is_the_start_and_alpha_1_the_run_exactly(trained_run: Path, fine_tuned: dict[str, Path], demo_data):
    blended = scores("--checkpoint", str(fine_tuned["full"]), "--wise-ft", "0,0.5,1", "--data", str(demo_data.heldout_csv))
    start = scores("--checkpoint", str(trained_run / "checkpoints" / "epoch_6.pt"), "--data", str(demo_data.heldout_csv))
    run = scores("--checkpoint", str(fine_tuned["full"]), "--data", str(demo_data.heldout_csv))
    [row] = blended["rows"]
    assert blended["weights"] == ["α=0", "α=0.5", "α=1"] and row["metric"] == "zero-shot top-1"
    assert row["scores"][0] == start["results"][0]["zero_shot"]["top1"]
    assert row["scores"][2] == run["results"][0]["zero_shot"]["top1"]
    assert row["best"] == blended["weights"][max(range(3), key=lambda index: row["scores"][index])]


def test_an_exported_blend_is_the_interpolation_and_loads_in_plain_open_clip(trained_run: Path, fine_tuned: dict[str, Path], demo_data,
                                                                              tmp_path: Path):
    import open_clip

    out = tmp_path / "wise-0.3.pt"
    result = run_bmclip("export", str(fine_tuned["full"]), "--wise-ft", "0.3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "α=0.3 between the run's start and" in result.stdout
    start, end = state(trained_run / "checkpoints" / "epoch_6.pt"), state(fine_tuned["full"] / "checkpoints" / "epoch_3.pt")
    blend = state(out)
    for key, value in blend.items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.7 * start[key] + 0.3 * end[key], atol=1e-6), key
    register_with_open_clip()
    model, _, _ = open_clip.create_model_and_transforms("bmclip-tiny", pretrained=str(out))
    assert all(torch.equal(model.state_dict()[key], value) for key, value in blend.items())
    said = scores("--checkpoint", str(fine_tuned["full"]), "--wise-ft", "0.3", "--data", str(demo_data.heldout_csv))
    exported = scores("--model", "bmclip-tiny", "--checkpoint", str(out), "--data", str(demo_data.heldout_csv))
    assert said["rows"][0]["scores"][0] == exported["results"][0]["zero_shot"]["top1"]


def test_lora_and_locked_tower_runs_blend_their_update(trained_run: Path, fine_tuned: dict[str, Path], tmp_path: Path):
    start = state(trained_run / "checkpoints" / "epoch_6.pt")
    merged = tmp_path / "lora-merged.pt"
    assert run_bmclip("export", str(fine_tuned["lora"]), "--output", str(merged)).returncode == 0
    half = tmp_path / "lora-half.pt"
    result = run_bmclip("export", str(fine_tuned["lora"]), "--wise-ft", "0.5", "--output", str(half))
    assert result.returncode == 0, result.stderr
    assert "LoRA adapters merged" in result.stdout
    full, blend = state(merged), state(half)
    changed = [key for key in start if start[key].is_floating_point() and not torch.equal(start[key], full[key])]
    assert changed, "the adapters changed some layers"
    for key in changed:
        assert torch.allclose(blend[key], start[key] + 0.5 * (full[key] - start[key]), atol=1e-6), key

    locked = tmp_path / "locked-half.pt"
    assert run_bmclip("export", str(fine_tuned["locked"]), "--wise-ft", "0.5", "--output", str(locked)).returncode == 0
    blend = state(locked)
    assert all(torch.equal(blend[key], start[key]) for key in start if key.startswith("visual.")), "the frozen tower stays the start"
    assert any(not torch.equal(blend[key], start[key]) for key in start if not key.startswith("visual.") and start[key].is_floating_point())


def test_a_soup_is_the_mean_of_the_checkpoints(fine_tuned: dict[str, Path], tmp_path: Path):
    out = tmp_path / "soup.pt"
    result = run_bmclip("export", str(fine_tuned["full"]), "--average", "3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "the soup of epochs 1,2,3" in result.stdout
    epochs = [state(fine_tuned["full"] / "checkpoints" / f"epoch_{k}.pt") for k in (1, 2, 3)]
    soup = state(out)
    for key, value in soup.items():
        if value.is_floating_point():
            assert torch.allclose(value, torch.stack([epoch[key] for epoch in epochs]).mean(dim=0), atol=1e-7), key


def test_blending_needs_a_start_and_sane_weights(trained_run: Path, fine_tuned: dict[str, Path], demo_data, monkeypatch, tmp_path: Path):
    from typer.testing import CliRunner

    monkeypatch.chdir(tmp_path)

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    assert_refused(invoke("eval", "--checkpoint", str(trained_run), "--wise-ft", "0,1", "--data", str(demo_data.heldout_csv)),
                   f"--wise-ft: run '{trained_run}' was trained from scratch (no --pretrained), so it has no starting weights")
    assert_refused(invoke("eval", "--checkpoint", str(fine_tuned["full"]), "--wise-ft", "0,1.5", "--data", str(demo_data.heldout_csv)),
                   "--wise-ft: '1.5' is not a number from 0 to 1")
    assert_refused(invoke("export", str(fine_tuned["full"]), "--average", "5", "--output", "soup.pt"),
                   f"--average: asks for the last 5 checkpoints and '{fine_tuned['full']}' has 3; average 2 to 3 of them")
    assert not Path("soup.pt").exists()
