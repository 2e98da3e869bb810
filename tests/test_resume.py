"""`bmclip resume RUN_DIR` and `bmclip train --resume auto`: which checkpoint, which settings, which folder (dry runs)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from run_folders import assert_refused, make_run_folder, save_checkpoint, set_launcher_pid, truncate

from biomedclip_cli.runs.folder import CONFIG_FILE, LOG_FILE, read_run_config, run_config_text


def resume_argument(line: str) -> str:
    words = shlex.split(line)
    return words[words.index("--resume") + 1]


def test_resume_continues_from_the_newest_checkpoint_with_the_saved_settings(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, epochs=3, checkpoints=(1, 2), batch_size=8)
    result = invoke("resume", str(run_dir), "--dry-run")
    assert result.exit_code == 0, result.stderr
    line = result.stdout.strip()
    assert resume_argument(line) == str(run_dir / "checkpoints" / "epoch_2.pt")
    assert "--epochs 3" in line and "--batch-size 8" in line and "--train-data train.csv" in line
    assert (run_dir / LOG_FILE).read_text() == "", "a dry run writes nothing"


def test_resume_skips_a_truncated_newest_checkpoint_and_says_so(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, checkpoints=(1, 2))
    truncate(run_dir / "checkpoints" / "epoch_2.pt")
    result = invoke("resume", str(run_dir), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert resume_argument(result.stdout) == str(run_dir / "checkpoints" / "epoch_1.pt")
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "epoch_2.pt: skipped" in warnings[0] and "truncated or corrupt" in warnings[0]


def test_resume_from_another_folder_runs_where_the_run_was_launched(invoke, demo_data, tmp_path: Path, monkeypatch):
    run_dir = make_run_folder(demo_data.train_csv)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("resume", str(run_dir), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"cd {tmp_path} && ")
    assert "--train-data train.csv" in result.stdout and "--logs logs --name run" in result.stdout


def test_resume_from_another_folder_leaves_the_current_folder_as_it_was(invoke, demo_data, tmp_path: Path, monkeypatch):
    run_dir = make_run_folder(demo_data.train_csv, epochs=2, checkpoints=(1, 2))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert invoke("resume", str(run_dir), "--epochs", "3", "--dry-run").exit_code == 0
    assert Path.cwd() == elsewhere
    assert invoke("resume", str(run_dir)).exit_code == 0, "finished: nothing launched"
    assert Path.cwd() == elsewhere


def test_resume_of_a_moved_run_folder_continues_where_it_is(invoke, demo_data, tmp_path: Path):
    run_dir = make_run_folder(demo_data.train_csv)
    moved = run_dir.rename(tmp_path / "archive")
    result = invoke("resume", str(moved), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"--logs {tmp_path} --name archive" in result.stdout
    assert resume_argument(result.stdout) == str(moved / "checkpoints" / "epoch_2.pt")
    assert "was launched as 'logs/run'" in result.stderr


def test_a_finished_run_says_so_and_exits_0(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, epochs=2, checkpoints=(1, 2))
    result = invoke("resume", str(run_dir))
    assert result.exit_code == 0, result.stderr
    assert "has finished: epoch 2 of 2" in result.stdout and "--epochs N" in result.stdout
    assert (run_dir / LOG_FILE).read_text() == "", "nothing was launched"


def test_epochs_extend_a_finished_run_and_warn_about_the_schedule(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, epochs=2, checkpoints=(1, 2))
    result = invoke("resume", str(run_dir), "--epochs", "4", "--batch-size", "16", "--nproc-per-node", "2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--epochs 4" in result.stdout and "--batch-size 16" in result.stdout and "--nproc-per-node=2" in result.stdout
    assert resume_argument(result.stdout).endswith("epoch_2.pt")
    assert "--batch-size: changes the global batch from 8 to 32" in result.stderr
    assert "--epochs: extends the run from 2 to 4 epochs" in result.stderr


def test_resume_refuses_a_folder_without_bmclip_yaml(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv)
    (run_dir / CONFIG_FILE).unlink()
    assert_refused(invoke("resume", str(run_dir)), f"{run_dir}: has no bmclip.yaml, so it was not started by bmclip train")


def test_resume_refuses_a_corrupted_bmclip_yaml(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv)
    (run_dir / CONFIG_FILE).write_text("model: [bmclip-tiny\nepochs: 3\n")
    assert_refused(invoke("resume", str(run_dir)), "bmclip.yaml: is not valid YAML at line")
    (run_dir / CONFIG_FILE).write_text("model: bmclip-tiny\nepochs: many\n")
    assert_refused(invoke("resume", str(run_dir)), "bmclip.yaml: epochs: input should be a valid integer")


def test_resume_refuses_a_run_without_a_complete_checkpoint(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, checkpoints=(1,))
    truncate(run_dir / "checkpoints" / "epoch_1.pt")
    result = invoke("resume", str(run_dir))
    assert_refused(result,
                   f"{run_dir}: has no complete checkpoint to resume from; start it again in the same folder: bmclip train --config")
    assert "epoch_1.pt: skipped" in result.stderr


def test_resume_refuses_a_folder_that_is_not_a_run(invoke):
    assert_refused(invoke("resume", "nowhere"), "nowhere: is not a folder")


def test_resume_refuses_a_run_that_is_still_training(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv)
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "bmclip"])
    try:
        set_launcher_pid(run_dir, launcher.pid)
        assert_refused(invoke("resume", str(run_dir)), f"is being trained right now by bmclip process {launcher.pid}")
    finally:
        launcher.kill()
        launcher.wait()
    assert invoke("resume", str(run_dir), "--dry-run").exit_code == 0


def test_train_resume_auto_starts_fresh_without_a_run_folder(invoke, demo_data):
    make_run_folder(demo_data.train_csv, name="other")
    result = invoke("train", "--config", "logs/other/bmclip.yaml", "--name", "new", "--resume", "auto", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--resume" not in result.stdout


def test_train_resume_auto_continues_from_the_newest_complete_checkpoint(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, checkpoints=(1, 2, 3), epochs=4)
    truncate(run_dir / "checkpoints" / "epoch_3.pt")
    result = invoke("train", "--config", "logs/run/bmclip.yaml", "--resume", "auto", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert resume_argument(result.stdout) == str(Path("logs/run/checkpoints/epoch_2.pt"))
    assert "epoch_3.pt: skipped" in result.stderr


def test_train_resume_auto_in_a_run_folder_without_checkpoints_starts_fresh_there(invoke, demo_data):
    make_run_folder(demo_data.train_csv, checkpoints=())
    result = invoke("train", "--config", "logs/run/bmclip.yaml", "--resume", "auto", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert resume_argument(result.stdout) == "latest", "open_clip's `latest` accepts the existing log; the worker finds no checkpoint"


def test_train_resume_auto_of_a_finished_run_launches_nothing(invoke, demo_data):
    make_run_folder(demo_data.train_csv, checkpoints=(1, 2), epochs=2)
    result = invoke("train", "--config", "logs/run/bmclip.yaml", "--resume", "auto")
    assert result.exit_code == 0, result.stderr
    assert "has finished: epoch 2 of 2" in result.stdout


def test_train_resume_auto_without_a_name_warns(invoke, demo_data):
    make_run_folder(demo_data.train_csv, name="other")
    Path("train.yaml").write_text("train_data: train.csv\nmodel: bmclip-tiny\nresume: auto\n")
    result = invoke("train", "--config", "train.yaml", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--resume: auto without --name starts a new run folder each time" in result.stderr


def test_a_run_resumed_from_its_own_checkpoint_saves_resume_auto(invoke, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, checkpoints=(1,))
    config = read_run_config(run_dir).model_copy(update={"resume": str(run_dir / "checkpoints" / "epoch_1.pt")})
    assert "resume: auto" in run_config_text(config), "training with the saved config again continues from the newest checkpoint"
    elsewhere = save_checkpoint(Path("other-run"), 1)
    assert f"resume: {elsewhere}" in run_config_text(config.model_copy(update={"resume": str(elsewhere)}))


def test_fine_tuning_from_another_runs_last_checkpoint_is_not_a_finished_run(invoke, demo_data):
    make_run_folder(demo_data.train_csv, name="base", checkpoints=(1, 2), epochs=2)
    result = invoke("train", "--config", "logs/base/bmclip.yaml", "--name", "tuned",
                    "--resume", "logs/base/checkpoints/epoch_2.pt", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "has finished" not in result.stderr and "--resume logs/base/checkpoints/epoch_2.pt" in result.stdout
