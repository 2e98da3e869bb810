"""Every recipe of the seed guide, written as bmclip in docs/training.md and in examples/, trains what the guide trains.

Each docs/training.md recipe runs with --dry-run; open_clip_train's own parser must get the same values from
the worker's arguments as from the guide's command, and torchrun's parser the same launch settings.
"""

from __future__ import annotations

import os
import re
import shlex
from argparse import Namespace
from pathlib import Path

import pytest
from conftest import REPO, run_bmclip, write_fitting_checkpoint
from open_clip_train.params import parse_args
from PIL import Image
from torch.distributed.run import get_args_parser

from biomedclip_cli.launch.launcher import WORKER_MODULE

# The guide's commands, verbatim, with its placeholder paths mapped to docs/training.md's relative paths.
SEED_COMMANDS = {
    "csv-6gpu": """
        CUDA_VISIBLE_DEVICES=0,1,2,3,4,5 torchrun --nproc_per_node 6 -m training.main \\
            --batch-size 500 \\
            --precision amp \\
            --workers 4 \\
            --report-to tensorboard \\
            --save-frequency 1 \\
            --logs="/path/to/your/local/logs" \\
            --dataset-type csv \\
            --csv-separator="," \\
            --train-data /path/to/your/local/training_dict.csv \\
            --csv-img-key filepath \\
            --csv-caption-key caption \\
            --warmup 1000 \\
            --lr=5e-6 \\
            --wd=0.1 \\
            --epochs=32 \\
            --model ViT-B-32 \\
            --pretrained /path/to/your/local/model""",
    "webdataset-4gpu": """
        torchrun --nproc_per_node 4 -m open_clip_train.main \\
            --train-data '/data/cc12m/cc12m-train-{0000..2175}.tar' \\
            --train-num-samples 10968539 \\
            --dataset-type webdataset \\
            --batch-size 320 \\
            --precision amp \\
            --workers 4 \\
            --imagenet-val /data/imagenet/validation/""",
    "multinode": """
        torchrun --nproc_per_node=4 \\
            --rdzv_endpoint=$HOSTE_NODE_ADDR \\
            -m open_clip_train.main \\
            --train-data '/data/cc12m/cc12m-train-{0000..2175}.tar' \\
            --train-num-samples 10968539 \\
            --dataset-type webdataset \\
            --batch-size 320 \\
            --precision amp \\
            --workers 4 \\
            --imagenet-val /data/imagenet/validation/""",
    "resume": """
        python -m open_clip_train.main \\
            --train-data="/path/to/train_data.csv" \\
            --val-data="/path/to/validation_data.csv"  \\
            --resume /path/to/checkpoints/epoch_K.pt""",
}
PATHS = {
    "/path/to/your/local/logs": "logs",
    "/path/to/your/local/training_dict.csv": "data/training_dict.csv",
    "/path/to/your/local/model": "models/ViT-B-32.pt",
    "/data/cc12m/cc12m-train-{0000..2175}.tar": "biomedica/commercial/{000000..001861}.tar",
    "/data/imagenet/validation/": "imagenet/validation/",
    "$HOSTE_NODE_ADDR": "node001:29400",
    "/path/to/train_data.csv": "data/train_data.tsv",
    "/path/to/validation_data.csv": "data/validation_data.tsv",
    "/path/to/checkpoints/epoch_K.pt": "logs/rn50-run/checkpoints/epoch_3.pt",
}
EXAMPLES = {"csv-6gpu": "seed-csv-6gpu.yaml", "webdataset-4gpu": "seed-webdataset-4gpu.yaml",
            "multinode": "seed-multinode.yaml", "resume": "seed-resume.yaml"}
# Values bmclip always fills in itself: a run name, and the reader type `auto` resolves to.
RESOLVED_BY_BMCLIP = {"name", "dataset_type"}


def readme_recipes() -> dict[str, list[str]]:
    """The bmclip command under each `<!-- seed: NAME -->` marker of docs/training.md, as argv."""
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- seed: ([\w-]+) -->\n```bash\n(.*?)```", text, flags=re.S)
    return {name: shlex.split(block.replace("\\\n", " "))[2:] for name, block in found}


def seed_argv(name: str) -> tuple[dict[str, str], list[str], list[str]]:
    """The guide's command split into environment, launcher args and open_clip args."""
    command = SEED_COMMANDS[name]
    for placeholder, path in PATHS.items():
        command = command.replace(placeholder, path)
    words = shlex.split(command.replace("\\\n", " "))
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    words = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    module_at = words.index("-m")
    return env, words[1:module_at], words[module_at + 2:]


def make_recipe_files(folder: Path) -> None:
    """The files the recipes name, so preflight passes: CSV/TSV with images, shards, a checkpoint."""
    (folder / "data").mkdir()
    (folder / "models").mkdir()
    Image.new("RGB", (8, 8)).save(folder / "data" / "figure.jpg")
    (folder / "data" / "training_dict.csv").write_text("filepath,caption\ndata/figure.jpg,Chest X-ray\n")
    for split in ("train_data", "validation_data"):
        (folder / "data" / f"{split}.tsv").write_text("filepath\ttitle\ndata/figure.jpg\tChest X-ray\n")
    write_fitting_checkpoint(folder / "models" / "ViT-B-32.pt", "ViT-B-32")
    shards = folder / "biomedica" / "commercial"
    shards.mkdir(parents=True)
    for index in range(1862):
        (shards / f"{index:06d}.tar").touch()
    checkpoints = folder / "logs" / "rn50-run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "epoch_3.pt").write_bytes(b"checkpoint")


@pytest.fixture(scope="module")
def recipe_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recipes")
    make_recipe_files(folder)
    return folder


def dry_run(args: list[str], folder: Path) -> tuple[dict[str, str], list[str], list[str]]:
    """bmclip's dry-run line split into environment, launcher args and open_clip args."""
    result = run_bmclip("train", "--dry-run", *args, cwd=folder, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    words = shlex.split(result.stdout)
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    words = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    worker_at = words.index(WORKER_MODULE)
    assert words[worker_at + 1] == "--"
    return env, words[3:worker_at - 1], words[worker_at + 2:]


def comparable(args: Namespace) -> dict[str, object]:
    values = {key: value for key, value in vars(args).items() if key not in RESOLVED_BY_BMCLIP}
    values["logs"] = os.path.normpath(values["logs"])
    return values


def test_readme_has_every_seed_recipe():
    assert set(readme_recipes()) == set(SEED_COMMANDS)


@pytest.mark.parametrize("name", list(SEED_COMMANDS))
def test_recipe_gives_open_clip_the_same_values_as_the_guide(name: str, recipe_folder: Path):
    bmclip_env, bmclip_launcher, bmclip_args = dry_run(readme_recipes()[name], recipe_folder)
    seed_env, seed_launcher, seed_args = seed_argv(name)
    assert comparable(parse_args(bmclip_args)) == comparable(parse_args(seed_args))
    assert bmclip_env == seed_env
    ours, theirs = (get_args_parser().parse_args([*launcher, "-m", "x"]) for launcher in (bmclip_launcher, seed_launcher))
    assert ours.nproc_per_node == theirs.nproc_per_node
    assert ours.rdzv_endpoint == (theirs.rdzv_endpoint or "")


@pytest.mark.parametrize("name", list(SEED_COMMANDS))
def test_example_yaml_gives_the_same_command_as_the_readme(name: str, recipe_folder: Path):
    from_yaml = dry_run(["--config", str(REPO / "examples" / EXAMPLES[name])], recipe_folder)
    from_readme = dry_run(readme_recipes()[name], recipe_folder)

    def drop_name(argv: list[str]) -> list[str]:
        return [a for i, a in enumerate(argv) if a != "--name" and (i == 0 or argv[i - 1] != "--name")]

    assert from_yaml[:2] == from_readme[:2]
    assert drop_name(from_yaml[2]) == drop_name(from_readme[2])
