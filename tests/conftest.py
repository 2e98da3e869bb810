"""Shared fixtures: real demo data on disk, and ways to run bmclip as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import FakeHub, HubServer
from machines import make_base_site
from typer.testing import CliRunner

from biomedclip_cli.cli import app
from biomedclip_cli.data.demo import DemoDataset, write_demo_dataset

REPO = Path(__file__).resolve().parent.parent
BIOMEDICA = "BIOMEDICA/biomedica_webdataset_24M"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    """A small synthetic dataset: 25 figures per class for training (200 figures: CSV + 2 shards), 10 held out."""
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "data", per_class=25, heldout_per_class=10, seed=0, shard_size=100)


@pytest.fixture(scope="session")
def base_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages of a base install: bmclip's base dependencies only, no torch (see tests/machines.py)."""
    return make_base_site(tmp_path_factory.mktemp("base-install") / "site-packages")


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run a bmclip command in-process from an empty working folder; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


def run_bmclip(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m biomedclip_cli ARGS` as a separate process, the way a user's shell would."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "biomedclip_cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_fitting_checkpoint(path: Path, model_name: str, prefix: str = "module.") -> Path:
    """A raw training checkpoint (`module.` keys) with every tensor of `model_name`, all zeros, in a few kilobytes.

    Each tensor is one zero expanded to its shape, so torch stores one element per tensor; open_clip
    loads it into the model like any checkpoint.
    """
    import torch

    from biomedclip_cli.models.facts import meta_model

    state = meta_model(model_name).state_dict()
    zeros = {f"{prefix}{key}": torch.zeros((), dtype=value.dtype).expand(value.shape) for key, value in state.items()}
    torch.save({"epoch": 1, "state_dict": zeros}, path)
    return path


TRAINED_RUN = ("--model", "bmclip-tiny", "--nproc-per-node", "1", "--batch-size", "20", "--epochs", "6", "--lr", "2e-3",
               "--warmup", "3", "--workers", "0", "--report-to", "tensorboard")


@pytest.fixture(scope="session")
def trained_run(demo_data: DemoDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder: bmclip-tiny trained on the demo data for 6 epochs (about a minute on 2 busy cores).

    Validated on the held-out figures every epoch (checkpoints/results.jsonl) and logged to TensorBoard.
    """
    logs = tmp_path_factory.mktemp("trained")
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--val-data", str(demo_data.heldout_csv),
                        *TRAINED_RUN, "--logs", str(logs), "--name", "tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    return logs / "tiny"


@pytest.fixture
def hub(demo_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A running fake hub whose gated BIOMEDICA repo holds the demo shards in commercial/; HF_TOKEN is its token.

    HF_HOME (and the saved-login path huggingface_hub read at import) point into the test's folder,
    so no real login is used and nothing is written outside it.
    """
    from huggingface_hub import constants

    fake = FakeHub()
    fake.add_folder(BIOMEDICA, "commercial", Path(demo_data.shards).parent)
    with HubServer(fake):
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("HF_TOKEN", fake.token)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
        yield fake
