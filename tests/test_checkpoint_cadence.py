"""--checkpoint-every-samples / --total-samples / --keep-checkpoints: what open_clip and the worker are told (dry runs)."""

from __future__ import annotations

import shlex

from open_clip_train.params import parse_args
from run_folders import assert_refused

from biomedclip_cli.launch.launcher import WORKER_MODULE


def worker_and_open_clip_args(line: str) -> tuple[list[str], list[str]]:
    """The worker's own options and open_clip's arguments in a dry-run line."""
    words = shlex.split(line)
    after = words[words.index(WORKER_MODULE) + 2:]
    return (after[:after.index("--")], after[after.index("--") + 1:]) if "--" in after else ([], after)


def test_a_checkpoint_every_n_samples_becomes_epochs_of_n_resampled_samples(invoke, demo_data):
    result = invoke("train", "--train-data", demo_data.shards, "--model", "bmclip-tiny", "--checkpoint-every-samples", "1000",
                    "--total-samples", "4500", "--keep-checkpoints", "2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    own, open_clip = worker_and_open_clip_args(result.stdout)
    assert own == ["--settings", '{"keep_checkpoints":2}']
    args = parse_args(open_clip)
    assert (args.train_num_samples, args.epochs, args.dataset_resampled, args.save_frequency) == (1000, 5, True, 1)


def test_without_cadence_options_the_worker_gets_only_open_clips_arguments(invoke, demo_data):
    result = invoke("train", "--train-data", demo_data.shards, "--model", "bmclip-tiny", "--dry-run")
    own, open_clip = worker_and_open_clip_args(result.stdout)
    assert own == [] and parse_args(open_clip).train_num_samples == demo_data.train_samples


def test_checkpoint_every_samples_needs_total_samples(invoke, demo_data):
    assert_refused(invoke("train", "--train-data", demo_data.shards, "--checkpoint-every-samples", "100"),
                   "--checkpoint-every-samples: needs --total-samples")
    assert_refused(invoke("train", "--train-data", demo_data.shards, "--total-samples", "100"),
                   "--total-samples: needs --checkpoint-every-samples")


def test_checkpoint_every_samples_refuses_what_contradicts_it(invoke, demo_data):
    cadence = ("--train-data", demo_data.shards, "--checkpoint-every-samples", "100", "--total-samples", "1000")
    assert_refused(invoke("train", *cadence, "--epochs", "3"),
                   "--epochs: is set by --total-samples 1000 / --checkpoint-every-samples 100 (= 10 epochs)")
    assert_refused(invoke("train", *cadence, "--train-num-samples", "50"),
                   "--train-num-samples: conflicts with --checkpoint-every-samples 100")
    assert_refused(invoke("train", *cadence, "--no-dataset-resampled"), "--no-dataset-resampled: conflicts with --checkpoint-every-samples")


def test_checkpoint_every_samples_needs_shards_not_a_csv(invoke, demo_data):
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--checkpoint-every-samples", "100",
                          "--total-samples", "1000"),
                   "--checkpoint-every-samples: needs webdataset shards")


def test_keep_checkpoints_must_be_positive(invoke, demo_data):
    assert_refused(invoke("train", "--train-data", demo_data.shards, "--keep-checkpoints", "0"),
                   "--keep-checkpoints: input should be greater than 0")
