"""bmclip on a base install (`pip install bmclip`: no torch, no open_clip), as on a cluster's login node.

slurm-gen and list-models work there, hf:// data included; a command that needs the [train] extra
says so in one line (exit 2). The base install is built from pyproject's base dependencies (tests/machines.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from hub_server import FakeHub, HubServer
from machines import machine, run_base_install

BIOMEDICA = "BIOMEDICA/biomedica_webdataset_24M"
COMMERCIAL_SHARDS = 1862
NOT_INSTALLED = re.compile(r"bmclip: error: (torch|numpy|PIL|webdataset): is not installed, "
                           r"and this command needs it; pip install 'bmclip\[train\]'")


def test_slurm_gen_checks_biomedica_on_the_hub_from_a_login_node_without_torch(base_site: Path, demo_data, tmp_path: Path):
    hub = FakeHub()
    listing = {f"commercial/{index:06d}.tar": b"" for index in range(1, COMMERCIAL_SHARDS)}
    hub.add_files(BIOMEDICA, {**listing, "commercial/000000.tar": (Path(demo_data.shards).parent / "000000.tar").read_bytes()})
    with HubServer(hub):
        env = {**machine(tmp_path, None), "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": hub.token}
        result = run_base_install(base_site, "slurm-gen", "--train-data", "biomedica:commercial", "--model", "ViT-B-32",
                                  "--gpus-per-node", "4", "--remote-paths", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!") and "commercial/{000000..001861}.tar" in result.stdout
    assert "--train-num-samples" in result.stdout
    assert "open_clip_train: is not installed; it must exist where the job runs" in result.stderr
    assert hub.token not in result.stdout + result.stderr


def test_list_models_without_torch_shows_the_biomedical_models(base_site: Path, tmp_path: Path):
    result = run_base_install(base_site, "list-models", env={**machine(tmp_path, None), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "BiomedCLIP" in result.stdout and "QuiltNet-B-32" in result.stdout


def test_commands_that_need_the_train_extra_say_so_in_one_line(base_site: Path, demo_data, tmp_path: Path):
    for args in (("eval", "--data", str(demo_data.heldout_csv), "--model", "bmclip-tiny"),
                 ("prepare-csv", str(demo_data.shards), "--out", str(tmp_path / "train.csv")),
                 ("prepare-csv", str(demo_data.train_csv), "--check-images", "--out", str(tmp_path / "train.csv")),
                 ("demo-data", str(tmp_path / "demo"))):
        result = run_base_install(base_site, *args, env=machine(tmp_path, None))
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
        assert len(errors) == 1 and NOT_INSTALLED.fullmatch(errors[0]), result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "train.csv").exists() and not (tmp_path / "demo").exists()
