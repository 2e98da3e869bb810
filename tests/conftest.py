"""Shared fixtures: real demo data on disk, and ways to run bmclip as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biomedclip_cli.cli import app
from biomedclip_cli.data.demo import DemoDataset, write_demo_dataset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    """A small synthetic dataset: 40 figures per modality for training (CSV + 2 shards), 10 held out."""
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "data", per_class=40, heldout_per_class=10, seed=0, shard_size=100)


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run a bmclip command in-process from an empty working folder; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


def run_bmclip(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m biomedclip_cli ARGS` as a separate process, the way a user's shell would."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "biomedclip_cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)
