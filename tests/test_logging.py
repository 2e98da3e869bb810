"""--report-to tensorboard and wandb in real trainings; a missing W&B login stops preflight, not the training."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_bmclip
from test_train_preflight import assert_refused, good_csv  # noqa: F401  (the fixture)

from biomedclip_cli.runs.report import read_run_logs

SECRET = "wandb-key-that-must-never-be-written-0123456789"


@pytest.mark.slow
def test_tensorboard_events_in_the_run_folder(trained_run: Path):
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    logs = read_run_logs(trained_run)
    assert logs.source == "TensorBoard events"
    assert len(logs.train["loss"].ys) >= 6 and logs.train["loss"].ys[-1] < logs.train["loss"].ys[0]


@pytest.mark.slow
def test_wandb_offline_writes_its_run_into_the_run_folder(demo_data, tmp_path: Path):
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": SECRET, "HOME": str(tmp_path / "home")}
    result = run_bmclip("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--nproc-per-node", "1",
                        "--epochs", "1", "--batch-size", "50", "--workers", "0", "--report-to", "wandb",
                        "--logs", str(tmp_path / "logs"), "--name", "wb", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "wb"
    [offline] = (run / "wandb").glob("offline-run-*-wb")
    assert b"train/loss" in (offline / "run-wb.wandb").read_bytes()
    assert not (tmp_path / "wandb").exists()
    for text in (result.stdout, result.stderr, *(p.read_text() for p in (run / "bmclip.yaml", run / "out.log", run / "params.txt"))):
        assert SECRET not in text


@pytest.fixture
def no_wandb_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No W&B credentials anywhere: an empty home, no key or mode in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_DISABLED", "NETRC", "WANDB_CONFIG_DIR",
                 "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_wandb_online_without_a_login_fails_in_preflight(invoke, good_csv, no_wandb_login):
    assert_refused(invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--report-to", "wandb"),
                   "--report-to: wandb is in online mode but no W&B login was found")
    dry = invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--report-to", "wandb", "--dry-run")
    assert dry.exit_code == 0 and "bmclip: warning: --report-to: wandb is in online mode" in dry.stderr


@pytest.mark.parametrize("login", ["netrc", "api_key", "offline"])
def test_a_login_or_offline_mode_passes(invoke, good_csv, no_wandb_login, monkeypatch, tmp_path: Path, login: str):
    if login == "netrc":
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {SECRET}\n")
        monkeypatch.setenv("NETRC", str(netrc))
    elif login == "api_key":
        monkeypatch.setenv("WANDB_API_KEY", SECRET)
    else:
        monkeypatch.setenv("WANDB_MODE", "offline")
    dry = invoke("train", "--train-data", "train.csv", "--model", "bmclip-tiny", "--report-to", "wandb", "--name", "r", "--dry-run")
    assert dry.exit_code == 0 and dry.stderr.count("bmclip: warning: --report-to") == 0, dry.stderr
    assert dry.stdout.startswith("WANDB_DIR=logs/r ")
    assert SECRET not in dry.stdout + dry.stderr
