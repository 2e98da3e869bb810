"""Fine-tuning a BiomedCLIP-shaped model offline: from a local folder with LoRA, from the hub cache with locked towers.

The model is tests/biomedclip_model.py's tiny stand-in (timm ViT image tower, Hugging Face BERT text
tower, BiomedCLIP's open_clip_config.json keys). Every command runs as a user's shell would run it,
with HF_HUB_OFFLINE=1: nothing may reach the network.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from biomedclip_model import MODEL_REPO, install_in_hub_cache, offline_env, write_model_folder
from conftest import REPO, run_bmclip
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.slow
TRAINING = ("--batch-size", "20", "--lr", "1e-3", "--warmup", "2", "--workers", "0", "--report-to", "tensorboard")


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face home whose cache holds the tiny BiomedCLIP and its BERT text tower, as after `hf download`."""
    hf_home = tmp_path_factory.mktemp("hf-home")
    install_in_hub_cache(hf_home)
    return hf_home


def zero_shot_top1(result: subprocess.CompletedProcess[str]) -> float:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["results"][0]["zero_shot"]["top1"]


def trainable_fraction(stderr: str) -> float:
    found = re.search(r"trainable parameters ([\d,]+) of ([\d,]+) \(", stderr)
    assert found, stderr[-3000:]
    return int(found[1].replace(",", "")) / int(found[2].replace(",", ""))


def test_lora_on_a_local_biomedclip_folder_trains_resumes_evaluates_and_exports(demo_data, hub_cache: Path, tmp_path: Path):
    env = offline_env(hub_cache)
    folder = write_model_folder(tmp_path / "biomedclip")
    run_dir = tmp_path / "logs" / "lora"
    trained = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--model", f"local-dir:{folder}", "--lora-rank", "4",
                         "--val-zeroshot", str(demo_data.heldout_csv), "--keep-best", "zeroshot-top1", "--epochs", "2",
                         "--nproc-per-node", "2", *TRAINING, "--logs", str(tmp_path / "logs"), "--name", "lora", env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert 0 < trainable_fraction(trained.stderr) < 0.1, "only the adapters (and the logit scale) train"
    assert "zero-shot top-1" in trained.stderr and "best checkpoint" in trained.stdout
    scores = [json.loads(line) for line in (run_dir / "zeroshot.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in scores] == [1, 2]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    logged = [event.value for event in events.Scalars("val/zeroshot-top1")]
    assert logged == pytest.approx([row["top1"] for row in scores]), "TensorBoard has the same scores, one per epoch"
    best = json.loads((run_dir / "best.json").read_text())
    assert best["value"] == max(row["top1"] for row in scores) and (run_dir / "checkpoints" / "best.pt").is_file()

    resumed = run_bmclip("resume", str(run_dir), "--epochs", "3", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing at epoch 2" in (run_dir / "out.log").read_text()
    last = json.loads((run_dir / "zeroshot.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 3

    evaluated = zero_shot_top1(run_bmclip("eval", "--checkpoint", str(run_dir), "--data", str(demo_data.heldout_csv), "--json", env=env))
    assert abs(evaluated - last["top1"]) <= 2 / last["images"], "bmclip eval scores the LoRA checkpoint as training did"

    exported = run_bmclip("export", str(run_dir), "--output", str(tmp_path / "merged"), env=env)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "LoRA adapters merged" in exported.stdout and (tmp_path / "merged" / "open_clip_config.json").is_file()
    plain = zero_shot_top1(run_bmclip("eval", "--model", f"local-dir:{tmp_path / 'merged'}", "--data", str(demo_data.heldout_csv),
                                      "--json", env=env))
    assert plain == evaluated, "the merged folder is the same model, loaded by open_clip alone"
    loads = subprocess.run([sys.executable, "-c", "import open_clip, sys; from peft.tuners.lora import LoraLayer; "
                            "m, _, _ = open_clip.create_model_and_transforms(sys.argv[1]); "
                            "assert not any(isinstance(x, LoraLayer) for x in m.modules())", f"local-dir:{tmp_path / 'merged'}"],
                           env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300, check=False)
    assert loads.returncode == 0, loads.stderr[-3000:]

    reported = run_bmclip("report", str(run_dir), env=env)
    assert reported.returncode == 0, reported.stderr[-3000:]
    page = (run_dir / "report" / "index.html").read_text()
    assert "kept by --keep-best" in page and "zero-shot top-1" in page and (run_dir / "report" / "zeroshot.png").is_file()


def test_a_hub_biomedclip_with_locked_towers_trains_resumes_and_evaluates_offline(demo_data, hub_cache: Path, tmp_path: Path):
    env = offline_env(hub_cache)
    model = f"hf-hub:{MODEL_REPO}"
    run_dir = tmp_path / "logs" / "locked"
    untrained = zero_shot_top1(run_bmclip("eval", "--model", model, "--data", str(demo_data.heldout_csv), "--json", env=env))
    trained = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--model", model, "--lock-image", "--lock-text",
                         "--lock-text-unlocked-layers", "1", "--epochs", "1", "--nproc-per-node", "1", *TRAINING,
                         "--logs", str(tmp_path / "logs"), "--name", "locked", env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert 0 < trainable_fraction(trained.stderr) < 0.5, "the image tower and all but the last text layer are frozen"
    resumed = run_bmclip("resume", str(run_dir), "--epochs", "2", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run_dir / "checkpoints" / "epoch_2.pt").is_file()
    result = run_bmclip("eval", "--compare", str(run_dir), "--data", str(demo_data.heldout_csv), "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)["results"]
    assert [row["name"] for row in rows] == ["start (its own weights)", "epoch_1", "epoch_2"]
    assert rows[0]["zero_shot"]["top1"] == untrained, "the start is the hub model's own weights"
    reported = run_bmclip("report", str(run_dir), env=env)
    assert reported.returncode == 0, reported.stderr[-3000:]
