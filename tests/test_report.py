"""`bmclip report RUN_DIR` on a real short run's folder, finished or still going."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_bmclip
from PIL import Image
from run_folders import DIVERGED_LOG, assert_refused, make_run_folder

from biomedclip_cli.runs.folder import CONFIG_FILE, LOG_FILE
from biomedclip_cli.runs.report import PLOT_DPI, PLOT_SIZE_INCHES

PLOT_PIXELS = (int(PLOT_SIZE_INCHES[0] * PLOT_DPI), int(PLOT_SIZE_INCHES[1] * PLOT_DPI))
PLOTS = ("loss", "lr", "logit_scale", "samples_per_second", "validation")


def assert_plots(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        with Image.open(folder / f"{name}.png") as image:
            assert image.size == PLOT_PIXELS, name
            darkest, brightest = image.convert("L").getextrema()
            assert brightest - darkest > 100, f"{name}.png is blank"


@pytest.mark.slow
def test_report_of_a_finished_run(trained_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = run_bmclip("report", str(run))
    assert result.returncode == 0, result.stderr
    report = run / "report"
    assert_plots(report, PLOTS)
    page = (report / "index.html").read_text()
    assert "finished: 6 of 6 epochs" in page and "TensorBoard events" in page
    assert f"{run}/checkpoints/epoch_" in page and "lowest validation loss" in page
    assert all(f'src="{name}.png"' in page for name in PLOTS)
    assert "world_size" in page and "bmclip-tiny" in page
    assert str(report / "index.html") in result.stdout


@pytest.mark.slow
def test_report_of_a_run_still_going(trained_run: Path, tmp_path: Path):
    """Two epochs in, without TensorBoard: curves from out.log, a half-written results line skipped."""
    run = tmp_path / "running"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_run / "bmclip.yaml", run)
    log = (trained_run / "out.log").read_text().splitlines()
    cut = next(i for i, line in enumerate(log) if "Start epoch 2" in line)
    (run / "out.log").write_text("\n".join(log[:cut]) + "\n2026-11-28,10:00:00 | INFO | Train Epoch: 2 [ 20/")
    results = (trained_run / "checkpoints" / "results.jsonl").read_text().splitlines()
    (run / "checkpoints" / "results.jsonl").write_text("\n".join(results[:2]) + '\n{"image_to_text_mean_rank": 4.')
    for epoch in (1, 2):
        shutil.copy(trained_run / "checkpoints" / f"epoch_{epoch}.pt", run / "checkpoints")
    result = run_bmclip("report", str(run), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "in progress or stopped: 2 of 6 epochs checkpointed" in result.stdout
    assert_plots(tmp_path / "out", PLOTS)
    assert "out.log" in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.slow
def test_report_of_a_folder_that_is_no_run(tmp_path: Path):
    result = run_bmclip("report", str(tmp_path))
    assert result.returncode == 2
    assert f"bmclip: error: RUN_DIR: '{tmp_path}' has neither bmclip.yaml nor out.log" in result.stderr


def test_report_of_a_diverged_run_shows_its_nan_loss(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, name="diverged", epochs=2, checkpoints=(1, 2))
    (run_dir / LOG_FILE).write_text(DIVERGED_LOG.read_text())
    result = invoke("report", str(run_dir))
    assert result.exit_code == 0, result.stderr
    assert "<td>2.5411 → nan</td>" in (run_dir / "report" / "index.html").read_text()


def test_report_of_a_run_with_a_broken_bmclip_yaml(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, name="broken")
    (run_dir / CONFIG_FILE).write_text("model: bmclip-tiny\nepochs: [\n")
    assert_refused(invoke("report", str(run_dir)), f"{run_dir / CONFIG_FILE}: is not valid YAML at line 3")
