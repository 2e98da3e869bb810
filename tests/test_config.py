"""The training config: YAML file plus command line, merged and validated into one TrainConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomedclip_cli.config import DatasetType, TrainConfig, build_config, config_to_yaml, flag, load_config_file
from biomedclip_cli.problems import ProblemFound


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problem_line(call) -> str:
    with pytest.raises(ProblemFound) as raised:
        call()
    return raised.value.problem.line()


def test_command_line_overrides_the_file(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "batch_size: 256\nepochs: 10\nmodel: ViT-B-16\n")
    config = build_config(load_config_file(config_file), {"batch_size": 32}, [], config_file)
    assert (config.batch_size, config.epochs, config.model) == (32, 10, "ViT-B-16")


def test_keys_may_use_dashes_like_the_flags(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "batch-size: 8\ntrain-data: x.csv\n")
    assert load_config_file(config_file) == {"batch_size": 8, "train_data": "x.csv"}


def test_extra_args_from_file_come_before_those_from_the_command_line(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "extra_args: ['--grad-clip-norm', '1.0']\n")
    config = build_config(load_config_file(config_file), {}, ["--grad-clip-norm", "2.0"], config_file)
    assert config.extra_args == ["--grad-clip-norm", "1.0", "--grad-clip-norm", "2.0"]


def test_unknown_key_suggests_the_closest(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "bach_size: 8\n")
    line = problem_line(lambda: load_config_file(config_file))
    assert "unknown key 'bach_size'" in line and "did you mean 'batch_size'" in line


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "model: ViT-B-32\nepochs: [1, 2\n")
    line = problem_line(lambda: load_config_file(config_file))
    assert line.startswith(str(config_file)) and "is not valid YAML at line" in line


def test_missing_file_and_non_mapping(tmp_path: Path):
    assert "does not exist" in problem_line(lambda: load_config_file(tmp_path / "nope.yaml"))
    listing = write(tmp_path / "list.yaml", "- a\n- b\n")
    assert "must hold a mapping" in problem_line(lambda: load_config_file(listing))


def test_bad_value_is_named_by_where_it_came_from(tmp_path: Path):
    config_file = write(tmp_path / "train.yaml", "epochs: 0\n")
    from_file = problem_line(lambda: build_config(load_config_file(config_file), {}, [], config_file))
    assert from_file.startswith(f"{config_file}: epochs: input should be greater than 0 (got 0)")
    from_flag = problem_line(lambda: build_config({}, {"lr": -1.0}, [], None))
    assert from_flag.startswith("--lr: input should be greater than 0") and "for example --lr" in from_flag


def test_report_to_accepts_known_loggers_only():
    assert TrainConfig(report_to="wandb, tensorboard").report_to == "wandb,tensorboard"
    assert "unknown logger 'comet'" in problem_line(lambda: build_config({}, {"report_to": "comet"}, [], None))


def test_resolved_config_round_trips_through_yaml(tmp_path: Path):
    config = TrainConfig(train_data="train.csv", dataset_type=DatasetType.csv, name="run", extra_args=["--debug"])
    config_file = write(tmp_path / "bmclip.yaml", config_to_yaml(config))
    assert build_config(load_config_file(config_file), {}, [], config_file) == config


def test_every_option_is_a_flag():
    assert flag("train_num_samples") == "--train-num-samples"
    assert all(name.islower() for name in TrainConfig.model_fields)
