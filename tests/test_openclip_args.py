"""The translation from a resolved TrainConfig to open_clip's and torchrun's arguments."""

from __future__ import annotations

import shlex

from torch.distributed.run import config_from_args, get_args_parser

from biomedclip_cli.config import DatasetType, Precision, TrainConfig
from biomedclip_cli.launch.launcher import WORKER_MODULE, torchrun_command
from biomedclip_cli.launch.openclip_args import openclip_argv, parse_with_open_clip


def resolved(**values) -> TrainConfig:
    base = dict(train_data="train.csv", dataset_type=DatasetType.csv, csv_separator=",", precision=Precision.fp32,
                nproc_per_node=2, lr=5e-4, name="run")
    return TrainConfig(**{**base, **values})


def test_open_clip_parses_every_value_bmclip_sets():
    config = resolved(val_data="val.csv", batch_size=256, epochs=5, wd=0.1, warmup=100, local_loss=True, gather_with_grad=True,
                      report_to="tensorboard", extra_args=["--grad-clip-norm", "1.0"])
    args = parse_with_open_clip(openclip_argv(config))
    assert (args.train_data, args.val_data, args.batch_size, args.epochs, args.lr, args.wd, args.warmup) == (
        "train.csv", "val.csv", 256, 5, 5e-4, 0.1, 100)
    assert (args.csv_separator, args.csv_caption_key, args.precision, args.report_to) == (",", "caption", "fp32", "tensorboard")
    assert args.local_loss and args.gather_with_grad and args.grad_clip_norm == 1.0
    assert (args.logs, args.name, args.model) == ("./logs", "run", "ViT-B-32")


def test_csv_keys_only_for_csv_and_resampling_only_for_shards():
    shards = openclip_argv(resolved(train_data="s/{0..3}.tar", dataset_type=DatasetType.webdataset, dataset_resampled=True,
                                    train_num_samples=40))
    assert "--csv-separator" not in shards and "--dataset-resampled" in shards
    csv = openclip_argv(resolved(dataset_resampled=True))
    assert "--csv-separator" in csv and "--dataset-resampled" not in csv


def test_false_and_unset_values_are_left_out():
    argv = openclip_argv(resolved())
    for absent in ("--lock-image", "--pretrained", "--resume", "--report-to", "--gpus", "--nproc-per-node"):
        assert absent not in argv


def test_launch_line_is_env_then_torchrun_then_worker_then_open_clip_args():
    config = resolved(gpus="0,1,2,3,4,5", nproc_per_node=6)
    command = torchrun_command(config, openclip_argv(config), python="/venv/bin/python")
    words = shlex.split(command.shell_line())
    assert words[0] == "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5"
    assert words[1:4] == ["/venv/bin/python", "-m", "torch.distributed.run"]
    worker_at = words.index(WORKER_MODULE)
    assert words[worker_at - 1] == "-m" and words[worker_at + 1] == "--"
    assert words[worker_at + 2:] == openclip_argv(config)


def launcher_namespace(config: TrainConfig):
    """What torchrun's own parser makes of the launch command bmclip builds (everything after `python`)."""
    return get_args_parser().parse_args(torchrun_command(config, openclip_argv(config)).argv[1:][2:])


def test_launcher_flags_are_accepted_by_torchruns_own_parser():
    single = launcher_namespace(resolved())
    assert single.standalone and single.nproc_per_node == "2"
    assert single.module and single.training_script == WORKER_MODULE
    assert single.training_script_args == openclip_argv(resolved())

    multi = launcher_namespace(resolved(nnodes=2, rdzv_endpoint="node001:29400", nproc_per_node=4))
    assert (multi.nnodes, multi.rdzv_endpoint, multi.rdzv_backend, multi.nproc_per_node) == ("2", "node001:29400", "c10d", "4")
    assert not multi.standalone

    ported = launcher_namespace(resolved(master_port=29511))
    assert (ported.master_port, ported.standalone) == (29511, False)


def test_several_nodes_meet_by_c10d_rendezvous_under_the_run_name_without_a_node_rank():
    named = launcher_namespace(resolved(nnodes=2, rdzv_endpoint="node001:29400", nproc_per_node=1))
    assert (named.rdzv_backend, named.rdzv_endpoint, named.rdzv_id) == ("c10d", "node001:29400", "run")
    launch, _, _ = config_from_args(named)
    assert (launch.rdzv_backend, launch.rdzv_endpoint, launch.run_id, launch.min_nodes, launch.max_nodes) == (
        "c10d", "node001:29400", "run", 2, 2)
    assert (launch.rdzv_configs["join_timeout"], launch.rdzv_configs["read_timeout"]) == ("600", "600")


def test_rdzv_timeout_bounds_the_wait_for_the_other_nodes_in_both_rendezvous_styles():
    c10d, _, _ = config_from_args(launcher_namespace(resolved(nnodes=2, rdzv_endpoint="node001:29400", rdzv_timeout=45)))
    static, _, _ = config_from_args(launcher_namespace(resolved(nnodes=2, node_rank=0, rdzv_endpoint="node001:29400", rdzv_timeout=45)))
    assert (c10d.rdzv_configs["join_timeout"], static.rdzv_configs["timeout"]) == ("45", "45")


def test_a_node_rank_makes_it_torchruns_static_rendezvous_at_node_0s_address():
    for endpoint, host in (("node001:29400", "node001"), ("[fd00::1]:29400", "[fd00::1]")):
        static = launcher_namespace(resolved(nnodes=2, node_rank=1, rdzv_endpoint=endpoint, nproc_per_node=1))
        assert (static.rdzv_backend, static.rdzv_endpoint, static.node_rank, static.master_addr, static.master_port) == (
            "static", "", 1, host, 29400)
        launch, _, _ = config_from_args(static)
        assert (launch.rdzv_backend, launch.rdzv_endpoint, launch.rdzv_configs["rank"], launch.min_nodes) == ("static", endpoint, 1, 2)
