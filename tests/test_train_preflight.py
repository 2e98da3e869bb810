"""`bmclip train` refuses bad input before anything launches: exit 2, one line naming the option or file and the fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from machines import machine
from PIL import Image

from biomedclip_cli.config import OPTION_FIELDS, flag

TINY = ("--model", "bmclip-tiny")


def make_images(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        Image.new("RGB", (16, 16), (index * 40, 0, 0)).save(folder / f"{index}.jpg")
        paths.append(f"{folder.name}/{index}.jpg")
    return paths


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    """train.csv in the working folder: filepath,caption with three existing images."""
    images = make_images(tmp_path / "imgs", 3)
    return write_csv(tmp_path / "train.csv", "filepath,caption", [f"{p},H&E section of lymph node" for p in images])


def assert_refused(result, expected: str) -> None:
    """Exit 2, one error line containing `expected`, nothing on stdout, no run folder."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("bmclip: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not Path("logs").exists()


def test_valid_dry_run_prints_one_line_and_writes_nothing(invoke, good_csv: Path):
    result = invoke("train", "--train-data", "train.csv", *TINY, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["imgs", "train.csv"]


def test_print_config_prints_what_the_run_would_record_and_config_takes_it_back(invoke, good_csv: Path):
    import yaml

    printed = invoke("train", "--train-data", "train.csv", *TINY, "--name", "first", "--print-config")
    assert printed.exit_code == 0, printed.stderr
    values = yaml.safe_load(printed.stdout)
    assert list(values) == list(OPTION_FIELDS) + ["extra_args"], "every option, defaults included, in field order"
    assert (values["train_data"], values["dataset_type"], values["name"], values["csv_separator"]) == ("train.csv", "csv", "first", ",")
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["imgs", "train.csv"], "nothing is written"
    Path("train.yaml").write_text(printed.stdout, encoding="utf-8")
    again = invoke("train", "--config", "train.yaml", "--dry-run")
    assert again.exit_code == 0, again.stderr
    direct = invoke("train", "--train-data", "train.csv", *TINY, "--name", "first", "--dry-run")
    assert again.stdout == direct.stdout, "the printed config launches the same command"


def test_every_config_field_is_a_train_flag(invoke):
    result = invoke("train", "--help-all")
    for name in OPTION_FIELDS:
        assert re.search(rf"--(\[no-\])?{flag(name)[2:]}\b", result.stdout), name


def test_config_file_missing(invoke):
    assert_refused(invoke("train", "--config", "missing.yaml"), "--config: file 'missing.yaml' does not exist")


def test_config_file_with_unknown_key(invoke):
    Path("train.yaml").write_text("train_data: x.csv\nepoch: 3\n")
    assert_refused(invoke("train", "--config", "train.yaml"), "unknown key 'epoch'; did you mean 'epochs'?")


def test_config_file_not_yaml(invoke):
    Path("train.yaml").write_text("model: [ViT\n")
    assert_refused(invoke("train", "--config", "train.yaml"), "train.yaml: is not valid YAML at line")


def test_train_data_missing(invoke):
    assert_refused(invoke("train", "--train-data", "nope.csv"), "--train-data: file 'nope.csv' does not exist; check the path")


def test_no_train_data_at_all(invoke):
    assert_refused(invoke("train", *TINY), "--train-data: is missing")


def test_csv_without_rows(invoke):
    write_csv(Path("train.csv"), "filepath,caption", [])
    assert_refused(invoke("train", "--train-data", "train.csv"), "has a header but no data rows")


def test_csv_that_is_not_text(invoke):
    Path("train.csv").write_bytes(b"PK\x03\x04\x00\x00binary")
    assert_refused(invoke("train", "--train-data", "train.csv"), "'train.csv' is not a text file")


def test_csv_missing_the_named_column_suggests_one_it_has(invoke):
    images = make_images(Path("imgs"), 1)
    write_csv(Path("train.csv"), "image,text", [f"{images[0]},a radiograph"])
    assert_refused(invoke("train", "--train-data", "train.csv"),
                   "--csv-img-key: 'train.csv' has no column 'filepath' (columns: image, text); pass --csv-img-key image")


def test_csv_with_another_separator_says_which(invoke):
    images = make_images(Path("imgs"), 1)
    write_csv(Path("train.csv"), "filepath;caption", [f"{images[0]};a radiograph"])
    assert_refused(invoke("train", "--train-data", "train.csv", "--csv-separator", ","),
                   "--csv-separator: 'train.csv' does not split into columns with ','; it splits with ';'")


def test_csv_separator_is_sniffed_when_not_given(invoke):
    images = make_images(Path("imgs"), 1)
    write_csv(Path("train.tsv"), "filepath\tcaption", [f"{images[0]}\ta radiograph"])
    result = invoke("train", "--train-data", "train.tsv", *TINY, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--csv-separator '\t'" in result.stdout


def test_csv_image_paths_missing(invoke):
    write_csv(Path("train.csv"), "filepath,caption", ["imgs/missing.jpg,a radiograph"])
    assert_refused(invoke("train", "--train-data", "train.csv"), "image 'imgs/missing.jpg' in row 1 does not exist")


def test_unknown_extension_needs_a_dataset_type(invoke):
    Path("train.json").write_text("{}")
    assert_refused(invoke("train", "--train-data", "train.json"), "--dataset-type: cannot tell the dataset type")


def test_shard_pattern_matching_nothing(invoke):
    assert_refused(invoke("train", "--train-data", "shards/{000000..000003}.tar", "--train-num-samples", "10"),
                   "--train-data: pattern 'shards/{000000..000003}.tar' matches no shard")


def test_some_shards_missing_are_named(invoke, demo_data):
    folder = Path(demo_data.shards).parent
    pattern = str(folder / "{000000..000003}.tar")
    assert_refused(invoke("train", "--train-data", pattern, *TINY), "2 of 4 shards are missing")


def test_shards_without_sizes_need_train_num_samples(invoke, demo_data):
    shards = Path("shards")
    shards.mkdir()
    (shards / "000000.tar").write_bytes((Path(demo_data.shards).parent / "000000.tar").read_bytes())
    assert_refused(invoke("train", "--train-data", "shards/000000.tar", *TINY), "--train-num-samples: is needed for webdataset shards")


def test_unknown_model_suggests_close_names(invoke, good_csv):
    assert_refused(invoke("train", "--train-data", "train.csv", "--model", "ViT-B-33"),
                   "--model: unknown model 'ViT-B-33'; did you mean ViT-B-32")


def test_pretrained_file_missing_or_a_folder(invoke, good_csv):
    assert_refused(invoke("train", "--train-data", "train.csv", "--pretrained", "weights/model.pt"),
                   "--pretrained: file 'weights/model.pt' does not exist")
    Path("weights").mkdir()
    assert_refused(invoke("train", "--train-data", "train.csv", "--pretrained", "weights/"),
                   "is a folder, open_clip needs a checkpoint file")


@pytest.mark.parametrize(("option", "value"), [("--batch-size", "0"), ("--epochs", "-1"), ("--lr", "0")])
def test_non_positive_numbers(invoke, good_csv, option, value):
    assert_refused(invoke("train", "--train-data", "train.csv", option, value), f"{option}: input should be greater than 0")


def test_unknown_passthrough_flag_is_checked_by_open_clip(invoke, good_csv):
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--", "--no-such-flag"),
                   "open_clip_train rejects them: unrecognized arguments: --no-such-flag")


def test_passthrough_may_not_repeat_a_bmclip_option(invoke, good_csv):
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--", "--epochs", "3"),
                   "--epochs: is a bmclip option and must not be repeated after `--`")


@pytest.mark.parametrize(("passed", "owned"), [(("--nam", "x"), "--name"), (("--precis", "fp16"), "--precision"),
                                               (("--batch", "5"), "--batch-size"), (("--nam=x",), "--name")])
def test_passthrough_may_not_abbreviate_a_bmclip_option(invoke, good_csv, passed, owned):
    typed = passed[0].split("=")[0]
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--dry-run", "--", "--grad-clip-norm", "1.0", *passed),
                   f"{typed}: is read by open_clip as {owned}, a bmclip option, which must not be repeated after `--`; "
                   f"pass {owned} before `--`")


def test_passthrough_may_abbreviate_open_clip_flags_bmclip_has_no_option_for(invoke, good_csv):
    result = invoke("train", "--train-data", "train.csv", *TINY, "--dry-run", "--", "--lock-image-freeze-bn", "--grad-clip", "1.0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip().endswith("--lock-image-freeze-bn --grad-clip 1.0")


def test_existing_run_folder_is_not_overwritten(invoke, good_csv):
    Path("logs/run1").mkdir(parents=True)
    Path("logs/run1/bmclip.yaml").write_text("model: bmclip-tiny\n")
    result = invoke("train", "--train-data", "train.csv", *TINY, "--name", "run1", "--dry-run")
    assert result.exit_code == 2 and "run folder 'logs/run1' already exists" in result.stderr
    assert Path("logs/run1/bmclip.yaml").read_text() == "model: bmclip-tiny\n"


def test_gpu_precision_without_gpu_is_an_error_at_launch_and_a_warning_in_dry_run(invoke, good_csv):
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--precision", "amp"),
                   "--precision: amp needs a GPU and none is visible")
    result = invoke("train", "--train-data", "train.csv", *TINY, "--precision", "amp", "--dry-run")
    assert result.exit_code == 0
    assert "bmclip: warning: --precision: amp needs a GPU" in result.stderr
    assert "--precision amp" in result.stdout


def test_more_processes_than_gpus(invoke, good_csv, monkeypatch):
    fake = machine(Path("machine"), "8-gpus-550-cuda12.4")
    monkeypatch.setenv("PATH", f"{fake['PATH']}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--nproc-per-node", "16"),
                   "--nproc-per-node: 16 processes but only 8 GPUs to run them on")
    dry = invoke("train", "--train-data", "train.csv", *TINY, "--dry-run")
    assert "--nproc-per-node=8" in dry.stdout and "--precision amp" in dry.stdout
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    dry = invoke("train", "--train-data", "train.csv", *TINY, "--dry-run")
    assert "--nproc-per-node=2" in dry.stdout


def test_gpus_are_the_indices_nvidia_smi_lists_whatever_cuda_visible_devices_says(invoke, good_csv, monkeypatch):
    fake = machine(Path("machine"), "8-gpus-550-cuda12.4")
    monkeypatch.setenv("PATH", f"{fake['PATH']}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    for gpus in ("2,3", "0,1"):
        dry = invoke("train", "--train-data", "train.csv", *TINY, "--gpus", gpus, "--dry-run")
        assert dry.exit_code == 0 and "warning" not in dry.stderr, dry.stderr
        assert (dry.stdout.startswith(f"CUDA_VISIBLE_DEVICES={gpus} ") and "--nproc-per-node=2" in dry.stdout
                and "--precision amp" in dry.stdout)
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, "--gpus", "7,8"),
                   "--gpus: GPU 8 requested but nvidia-smi lists only 8 here (0..7); pick indices nvidia-smi lists")


@pytest.mark.parametrize(("gpus", "precision"), [("0", "amp_bf16"), ("1", "amp")])
def test_preset_judges_bf16_on_the_gpus_the_run_gets(invoke, good_csv, monkeypatch, gpus, precision):
    fake = machine(Path("machine"), "2-gpus-a100-t4")
    monkeypatch.setenv("PATH", f"{fake['PATH']}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1" if gpus == "0" else "0")
    dry = invoke("train", "--train-data", "train.csv", *TINY, "--gpus", gpus, "--preset", "fast", "--dry-run")
    assert dry.exit_code == 0 and "bmclip: warning" not in dry.stderr, dry.stderr
    assert f"--precision {precision} " in dry.stdout


@pytest.mark.parametrize(("launch", "expected"), [
    (("--nnodes", "2", "--name", "run1"), "--nnodes: 2 nodes need a rendezvous endpoint to meet at; pass --rdzv-endpoint HOST:PORT"),
    (("--nnodes", "2", "--node-rank", "1", "--master-port", "29500"), "--nnodes: 2 nodes need a rendezvous endpoint to meet at"),
    (("--nnodes", "2", "--rdzv-endpoint", "node001:29400"), "--rdzv-id: is needed on several nodes without --name"),
    (("--nnodes", "2", "--rdzv-endpoint", "node001:29400", "--rdzv-id", "r1", "--master-port", "29500"),
     "--master-port: has no effect with --rdzv-endpoint"),
    (("--nnodes", "2", "--rdzv-endpoint", "node001:29400", "--node-rank", "2"), "--node-rank: 2 is not below --nnodes 2"),
    (("--nnodes", "2", "--rdzv-endpoint", "node001:port", "--node-rank", "1"), "--rdzv-endpoint: 'node001:port' is not HOST:PORT"),
])
def test_multi_node_settings_that_would_leave_nodes_waiting(invoke, good_csv, launch, expected):
    assert_refused(invoke("train", "--train-data", "train.csv", *TINY, *launch, "--dry-run"), expected)


@pytest.mark.parametrize("launch", [("--name", "run1"), ("--rdzv-id", "r1"), ("--node-rank", "1")])
def test_multi_node_launch_that_every_node_agrees_on(invoke, good_csv, launch):
    result = invoke("train", "--train-data", "train.csv", *TINY, "--nnodes", "2", "--rdzv-endpoint", "node001:29400", *launch, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--nnodes=2" in result.stdout


def test_misspelt_option_is_refused_by_the_parser(invoke):
    result = invoke("train", "--bach-size", "3")
    assert result.exit_code == 2 and "--bach-size" in result.stderr
