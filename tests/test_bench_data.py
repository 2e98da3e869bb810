"""`bmclip bench-data`: the data pipeline's samples/s against the model's, and what to change."""

from __future__ import annotations

import json
from pathlib import Path

from biomedclip_cli.config import DatasetType, TrainConfig
from biomedclip_cli.jobs.throughput import DataRate, StepRate, verdict

TINY = ("--model", "bmclip-tiny", "--batch-size", "16", "--precision", "fp32")


def test_measures_the_demo_csv_and_the_tiny_model(invoke, demo_data):
    Path("logs/demo").mkdir(parents=True)
    Path("logs/demo/bmclip.yaml").write_text("model: bmclip-tiny\n")
    Path("train.yaml").write_text(f"train_data: {demo_data.train_csv}\nworkers: 1\nname: demo\n")
    result = invoke("bench-data", "--config", "train.yaml", *TINY, "--batches", "5", "--steps", "1", "--json")
    assert result.exit_code == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["data"]["batches"] == 5 and measured["data"]["samples_per_second"] > 0
    assert (measured["model"]["steps"], measured["model"]["device"]) == (1, "cpu")
    assert measured["config"] == {"train_data": str(demo_data.train_csv), "dataset_type": "csv", "workers": 1, "batch_size": 16,
                                  "model": "bmclip-tiny"}
    faster_side = "model" if measured["data"]["samples_per_second"] >= 1.2 * measured["model"]["samples_per_second"] else "data"
    assert measured["verdict"]["bottleneck"] == faster_side
    assert sorted(p.name for p in Path("logs").iterdir()) == ["demo"], "bench-data trains nothing and writes no run folder"


def test_shards_stop_after_one_epoch_and_the_table_names_the_bottleneck(invoke, demo_data):
    result = invoke("bench-data", "--train-data", demo_data.shards, *TINY, "--workers", "0", "--batches", "1000", "--steps", "1")
    assert result.exit_code == 0, result.stderr
    assert "data pipeline" in result.stdout and f"{-(-demo_data.train_samples // 16)} batches" in result.stdout
    assert "is the bottleneck" in result.stdout or "barely keeps up" in result.stdout


def test_bad_input_is_refused_before_anything_is_measured(invoke):
    result = invoke("bench-data", "--train-data", "missing.csv", *TINY)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == "bmclip: error: --train-data: file 'missing.csv' does not exist; check the path"


def config(**values) -> TrainConfig:
    return TrainConfig(**{"train_data": "train.csv", "dataset_type": DatasetType.csv, "nproc_per_node": 1, **values})


def test_slow_csv_loading_asks_for_more_workers_and_shards():
    result = verdict(config(workers=2), DataRate(100.0, 1.0, 50), StepRate(400.0, 5, "cuda:0"), cpu_cores=16)
    assert result.bottleneck == "data" and "wait about 75% of the time" in result.summary
    assert result.advice[0].startswith("set --workers 10 ")
    assert "webdataset shards" in result.advice[1]


def test_loading_in_the_training_process_asks_for_workers():
    result = verdict(config(workers=0, dataset_type=DatasetType.webdataset), DataRate(100.0, 1.0, 50), StepRate(400.0, 5, "cuda:0"),
                     cpu_cores=8)
    assert result.advice == ["--workers 0 loads data inside the training process: set --workers 4 or more"]


def test_more_workers_than_cores_can_give_says_so():
    result = verdict(config(workers=2, nproc_per_node=8), DataRate(100.0, 1.0, 50), StepRate(400.0, 5, "cuda:0"), cpu_cores=16)
    assert "only 2 cores each" in result.advice[0]


def test_fast_enough_data_points_at_the_model():
    result = verdict(config(workers=8), DataRate(2000.0, 1.0, 50), StepRate(400.0, 5, "cuda:0"), cpu_cores=16)
    assert result.bottleneck == "model" and "5.0x" in result.summary
    assert result.advice == ["to train faster, try --preset fast (see bmclip train --help)"]
