"""`bmclip list-models` on the installed open_clip: its table read without torch, facts from configs, the local cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
from conftest import REPO, run_bmclip
from run_folders import assert_refused

from biomedclip_cli.models.facts import measure, measured_facts
from biomedclip_cli.models.pretrained_tags import pretrained_weights

HEAVY_MODULES = ("torch", "open_clip", "timm", "transformers", "numpy")


def list_models_json(*args: str, env: dict[str, str] | None = None) -> list[dict]:
    result = run_bmclip("list-models", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_table_read_without_torch_is_open_clips_own():
    ours = [(w.model, w.tag) for w in pretrained_weights()]
    assert ours == open_clip.list_pretrained()
    openai = next(w for w in pretrained_weights() if (w.model, w.tag) == ("ViT-B-32", "openai"))
    assert openai.hf_repo == "timm/vit_base_patch32_clip_224.openai" and openai.quick_gelu


def test_list_models_imports_no_torch():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "biomedclip_cli", "list-models", "--json"],
                            capture_output=True, text=True, cwd=REPO, check=True)
    modules = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not modules & set(HEAVY_MODULES)


def test_every_open_clip_pair_is_listed_with_facts_and_paste_ready_flags():
    rows = list_models_json()
    pairs = [(row["model"], row["pretrained"]) for row in rows if row["section"] == "open_clip"]
    assert pairs == open_clip.list_pretrained()
    vit = next(row for row in rows if (row["model"], row["pretrained"]) == ("ViT-B-32", "laion2b_s34b_b79k"))
    assert (vit["params"], vit["image_size"], vit["embed_dim"]) == (151_277_313, 224, 512)
    assert vit["train_flags"] == "--model ViT-B-32 --pretrained laion2b_s34b_b79k"
    assert vit["cached"] is False


def test_biomedical_section_names_biomedclip_and_bmc_clip():
    rows = list_models_json("--biomedical")
    by_title = {row["title"]: row for row in rows}
    assert {row["section"] for row in rows} == {"biomedical"}
    biomedclip = by_title["BiomedCLIP"]
    assert biomedclip["train_flags"] == "--model hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    assert (biomedclip["image_size"], biomedclip["embed_dim"], biomedclip["context_length"]) == (224, 512, 256)
    bmc = by_title["BMC-CLIP"]
    assert bmc["model"] == "ViT-L-14" and bmc["download"] == "hf download BIOMEDICA/BMC_CLIP_CF BMC_CLIP_CF.pt"
    assert bmc["params"] == measured_facts()["ViT-L-14"].params


def test_filter_matches_names_and_tags_in_any_case():
    rows = list_models_json("--filter", "DATACOMP_XL")
    assert rows and all("datacomp_xl" in row["pretrained"] for row in rows)


def fake_hub_cache(root: Path, repo: str, filename: str) -> Path:
    """A Hugging Face cache holding one file of `repo`, laid out as huggingface_hub writes it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    (snapshot / filename).write_bytes(b"weights")
    return snapshot / filename


def test_cached_weights_are_found_in_the_hub_cache_and_open_clips_url_cache(tmp_path: Path):
    hub = tmp_path / "hub"
    cached_file = fake_hub_cache(hub, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors")
    home = tmp_path / "home"
    url_cache = home / ".cache" / "clip"
    url_cache.mkdir(parents=True)
    (url_cache / "RN101.pt").write_bytes(b"weights")  # no hub copy: open_clip's URL download of RN101 openai
    env = {"HF_HUB_CACHE": str(hub), "HOME": str(home), "HF_HUB_OFFLINE": "1"}
    rows = list_models_json("--cached", env=env)
    expected = {("ViT-B-32", "laion2b_s34b_b79k"), ("RN101", "openai"), ("RN101-quickgelu", "openai")}  # both use RN101.pt
    assert {(row["model"], row["pretrained"]) for row in rows} == expected
    vit = next(row for row in rows if row["model"] == "ViT-B-32")
    assert vit["cached_path"] == str(cached_file)
    text = run_bmclip("list-models", "--cached", env={**env, "COLUMNS": "120"})
    assert "laion2b_s34b_b79k" in text.stdout and "3 entries (3 cached here)" in text.stdout


def test_a_cached_bmc_clip_checkpoint_becomes_the_pretrained_value(tmp_path: Path):
    cached_file = fake_hub_cache(tmp_path / "hub", "BIOMEDICA/BMC_CLIP_CF", "BMC_CLIP_CF.pt")
    rows = list_models_json("--biomedical", "--cached", env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert [row["train_flags"] for row in rows] == [f"--model ViT-L-14 --pretrained {cached_file}"]


def test_nothing_matching_says_so():
    result = run_bmclip("list-models", "--filter", "no-such-model")
    assert result.returncode == 0 and "no model matches" in result.stderr


@pytest.mark.parametrize("name", ["bmclip-tiny", "ViT-B-32", "RN50"])
def test_the_measured_table_is_current(name: str):
    assert measure(name) == measured_facts()[name]


def test_a_local_model_folder_is_listed_first_with_its_train_flags(invoke, tmp_path: Path):
    from biomedclip_model import write_model_folder

    folder = write_model_folder(tmp_path / "biomedclip")
    result = invoke("list-models", "--local-dir", str(folder), "--biomedical", "--json")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)[0]
    assert first["model"] == f"local-dir:{folder.resolve()}" and first["train_flags"] == f"--model local-dir:{folder.resolve()}"
    assert first["cached"] and first["image_size"] == 64 and first["params"] > 100_000, "facts from its config and weights"
    shown = invoke("list-models", "--local-dir", str(folder), "--biomedical")
    assert shown.stdout.startswith("Model folders") and f"--model local-dir:{folder.resolve()}" in shown.stdout


def test_a_local_folder_without_weights_is_refused_by_list_models(invoke, tmp_path: Path):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 32}}))
    assert_refused(invoke("list-models", "--local-dir", str(folder)), f"--local-dir {folder}: '{folder}' has no weights file")
