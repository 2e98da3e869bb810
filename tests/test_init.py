"""`bmclip init` writes a commented config that `bmclip train --config FILE --dry-run` takes as it is: for each scenario, at a
terminal (asked) or from flags, and from a run already made."""

from __future__ import annotations

import os
import pty
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from child_signals import default_signals
from conftest import BIOMEDICA, REPO
from hub_server import hf_url
from run_folders import assert_refused

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.runs.starter_configs import SCENARIO_NAMES

TINY_HUB_MODEL = "hf-hub:bmclip-test/tiny-biomedclip"


def keys_and_comments(path: Path) -> list[tuple[str, str]]:
    """Each key the file sets, with the comment line above it."""
    lines = path.read_text().splitlines()
    return [(line.split(":")[0], lines[index - 1]) for index, line in enumerate(lines) if line and not line.startswith(("#", " ", "-"))]


def scenario_flags(scenario: str, demo_data) -> list[str]:
    """The flags a user without a terminal gives: their data (two hub shards for BIOMEDICA), and for a cluster its resources."""
    if scenario == "biomedica":
        return ["--train-data", hf_url(BIOMEDICA, "commercial/{000000..000001}.tar"), "--classes", "clinical-imaging,microscopy"]
    flags = ["--train-data", str(demo_data.train_csv), "--val-zeroshot", str(demo_data.heldout_csv)]
    return flags + (["--nodes", "2", "--gpus-per-node", "4", "--partition", "gpu"] if scenario == "slurm" else [])


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_each_scenario_writes_a_commented_config_that_train_takes_as_it_is(scenario: str, invoke, demo_data, hub):
    """Every scenario runs beside the local hub: biomedica's shards are there, and no check of a model or data reaches the internet."""
    written = invoke("init", scenario, *scenario_flags(scenario, demo_data), "--out", "train.yaml")
    assert written.exit_code == 0, written.output
    keys = keys_and_comments(Path("train.yaml"))
    assert keys and all(key in TrainConfig.model_fields for key, _ in keys)
    assert all(comment.startswith("# ") and "Default: " in comment for _, comment in keys), keys
    checked = invoke("train", "--config", "train.yaml", "--dry-run")
    assert checked.exit_code == 0, checked.output
    command = checked.stdout.strip().splitlines()
    assert len(command) == 1 and "biomedclip_cli.rank.worker" in command[0]
    settings = yaml.safe_load(Path("train.yaml").read_text())
    expected = {"biomedclip-locked": ("lock_image", True), "biomedclip-lora": ("lora_rank", 8), "slurm": ("logs", "logs"),
                "biomedica": ("classes", "clinical-imaging,microscopy"), "workstation": ("pretrained", "openai"),
                "biomedclip-full": ("model", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")}[scenario]
    assert settings[expected[0]] == expected[1]
    suggested = Path("train.yaml").read_text().split("uncomment to use")[1].splitlines()[1:]
    values = [line.removeprefix("# ") for line in suggested
              if line.removeprefix("# ").split(":")[0] in TrainConfig.model_fields or line.startswith("# - ")]
    uncommented = yaml.safe_load("\n".join(values))
    assert len(uncommented) >= 5
    assert all(TrainConfig.model_validate({key: value}) for key, value in uncommented.items()), "each suggestion is a value train takes"


def test_the_slurm_config_names_the_slurm_gen_command_that_writes_its_job(invoke, demo_data, tmp_path: Path):
    written = invoke("init", "slurm", "--train-data", str(demo_data.train_csv), "--nodes", "2", "--gpus-per-node", "4",
                     "--partition", "gpu", "--time", "1-00:00:00", "--out", "cluster.yaml")
    assert written.exit_code == 0, written.output
    said = next(line for line in Path("cluster.yaml").read_text().splitlines() if "bmclip slurm-gen" in line)
    command = shlex.split(said.lstrip("# "))
    assert command[:4] == ["bmclip", "slurm-gen", "--config", "cluster.yaml"] and command[-1] == "--submit"
    job = invoke(*command[1:-1])  # without --submit: this machine has no sbatch
    assert job.exit_code == 0, job.output
    sbatch = Path("job.sbatch").read_text()
    assert all(line in sbatch for line in ("#SBATCH --nodes=2", "#SBATCH --partition=gpu", "#SBATCH --time=1-00:00:00"))


def test_from_a_run_writes_its_resolved_config_less_its_name_and_trains_the_same_command(invoke, demo_data, tmp_path: Path):
    original = ("--train-data", demo_data.shards, "--model", "bmclip-tiny", "--batch-size", "16", "--epochs", "3",
                "--where", 'image_primary_label != "Chart"', "--name", "run1", "--resume", "auto")
    open_clip_flags = ("--", "--grad-clip-norm", "1.0")
    recorded = invoke("train", *original, "--print-config", *open_clip_flags)  # what the run folder's bmclip.yaml holds
    assert recorded.exit_code == 0, recorded.output
    run_dir = tmp_path / "logs" / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "bmclip.yaml").write_text(recorded.stdout)

    written = invoke("init", "--from", str(run_dir), "--out", "again.yaml")
    assert written.exit_code == 0, written.output
    again = yaml.safe_load(Path("again.yaml").read_text())
    assert "name" not in again and "resume" not in again
    assert again["batch_size"] == 16 and again["extra_args"] == ["--grad-clip-norm", "1.0"]
    assert f"bmclip resume {run_dir}" in Path("again.yaml").read_text()
    renamed = invoke("init", "--from", str(run_dir), "--name", "run3", "--out", "-")
    assert yaml.safe_load(renamed.stdout)["name"] == "run3", "a flag given with --from goes over the run's values"
    same_name = ("--name", "run2")
    reused = invoke("train", "--config", "again.yaml", *same_name, "--dry-run")
    assert reused.exit_code == 0, reused.output
    assert reused.stdout == invoke("train", *original[:-4], *same_name, "--dry-run", *open_clip_flags).stdout


@pytest.mark.parametrize(("args", "expected"), [
    (("--out", "-"), "SCENARIO: is missing; name one: bmclip init workstation|slurm|"),
    (("workstatoin",), "SCENARIO: 'workstatoin' is not one bmclip init knows; choose one of workstation, slurm"),
    (("workstation", "--out", "taken.yaml"), "--out: 'taken.yaml' already exists; pass --force to replace it"),
    (("workstation", "--out", "configs/train.yaml"), "--out: folder 'configs' does not exist; create it first"),
    (("workstation", "--from", "logs/run1"), "--from: and the scenario 'workstation' both say what to write"),
    (("--from", "logs/none"), "logs/none: is not a folder"),
    (("workstation", "--nodes", "2"), "--nodes: is a SLURM job's resource, and the scenario 'workstation' writes no job"),
    (("slurm", "--nodes", "0"), "--nodes: "),
    (("workstation", "--out", "."), "--out: '.' is a folder; name the file to write"),
    (("biomedclip-lora", "--lora-rank", "0"), "--lora-rank: "),
])
def test_bad_input_is_one_line_and_writes_nothing(invoke, args: tuple[str, ...], expected: str):
    Path("taken.yaml").write_text("kept: true\n")
    assert_refused(invoke("init", *args), expected)
    assert sorted(p.name for p in Path().iterdir()) == ["taken.yaml"] and Path("taken.yaml").read_text() == "kept: true\n"


class Terminal:
    """`bmclip ARGS` on a pseudo-terminal: read up to a prompt, answer it."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "biomedclip_cli", *args], stdin=child, stdout=child, stderr=child, cwd=cwd,
                                        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}, preexec_fn=default_signals)
        os.close(child)
        self.seen = ""

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        """However the test went, no bmclip is left waiting for an answer."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.fd)

    def wait_for(self, text: str) -> None:
        """Read what the program prints until `text` has come (and keep what follows it)."""
        deadline = time.monotonic() + 120  # a bound on a hang only: it goes on as soon as the text is printed
        while text not in self.seen:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no {text!r} in {self.seen!r}"
            if select.select([self.fd], [], [], 1)[0]:
                self.seen += os.read(self.fd, 4096).decode(errors="replace")
        self.seen = self.seen.split(text, 1)[1]

    def answer(self, prompt: str, reply: str, end: str = "\r") -> None:
        """Wait until the program has printed `prompt`, then type `reply` and Enter (or `end`: Ctrl-D is "\x04")."""
        self.wait_for(prompt)
        os.write(self.fd, (reply + end).encode())

    def finish(self, status: int = 0) -> str:
        """Everything printed after the last answer, once the program has ended with `status`."""
        assert self.process.wait(timeout=120) == status
        while select.select([self.fd], [], [], 0)[0]:
            try:
                self.seen += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:
                break
        return self.seen


def test_at_a_terminal_it_asks_what_the_flags_leave_open(tmp_path: Path, demo_data):
    with Terminal("init", "--name", "lora-run", "--out", "lora.yaml", cwd=tmp_path) as terminal:
        terminal.answer("Which situation", "5")
        terminal.answer("Training data", str(demo_data.train_csv))
        terminal.answer("zero-shot each epoch", "")
        terminal.answer("Model", "")  # Enter keeps the scenario's value
        terminal.answer("LoRA rank", "0")
        terminal.wait_for("answer again")  # "--lora-rank: ...; answer again", then the same question
        terminal.answer("LoRA rank", "16")
        said = terminal.finish()
    assert "Run name" not in said, "a flag's value is not asked again"
    written = yaml.safe_load((tmp_path / "lora.yaml").read_text())
    assert written == {"train_data": str(demo_data.train_csv), "model": "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                       "lora_rank": 16, "batch_size": 64, "epochs": 10, "name": "lora-run", "report_to": "tensorboard", "resume": "auto"}


def test_the_end_of_input_at_a_question_is_one_line_and_writes_nothing(tmp_path: Path):
    with Terminal("init", "workstation", cwd=tmp_path) as terminal:
        terminal.answer("Training data", "", end="\x04")
        said = terminal.finish(status=2)
    assert "error:" in said and "the input ended before an answer to 'Training data" in said and "Traceback" not in said
    assert list(tmp_path.iterdir()) == []
