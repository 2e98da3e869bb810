"""`bmclip slurm-gen` writes an sbatch file from the train config: golden text, safe quoting, CPU jobs, refusals.

These tests need no cluster (tests/test_slurm_cluster.py runs the files on a real one). To accept a
deliberate change of the golden file: BMCLIP_UPDATE_GOLDEN=1 pytest tests/test_slurm_gen.py
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_bmclip
from open_clip_train.params import parse_args
from run_folders import save_checkpoint
from test_cli import imported_modules

from biomedclip_cli.jobs.slurm import BMCLIP_SBATCH_OPTIONS
from biomedclip_cli.launch.launcher import WORKER_MODULE

GOLDEN = REPO / "tests" / "golden" / "slurm-4nodes-8gpus.sbatch"
# The 4 x 8 GPU job of the golden file: BIOMEDICA shards that exist only on the cluster.
CLUSTER_JOB = (
    "--train-data", "/data/biomedica/commercial/{000000..002499}.tar", "--train-num-samples", "24000000",
    "--model", "ViT-B-32", "--pretrained", "openai", "--batch-size", "256", "--epochs", "32", "--workers", "8",
    "--report-to", "tensorboard,wandb", "--logs", "/scratch/bmclip/logs", "--name", "vit-b-32-biomedica",
    "--nodes", "4", "--gpus-per-node", "8", "--partition", "gpu", "--account", "biomed-lab", "--time", "2-00:00:00",
    "--mem", "480G", "--setup", "module load cuda/12.4", "--venv", "/opt/venvs/bmclip", "--chdir", "/scratch/bmclip",
    "--remote-paths", "--", "--grad-clip-norm", "1.0",
)
SEED_SBATCH_ARGS = """
    --save-frequency 1 --report-to tensorboard --train-data="/path_to_biomedica_tars/{00000..41455}.tar" --warmup 2000
    --batch-size=256 --epochs=32 --workers=8 --model ViT-B-32 --name "ViT-B-32-Vanilla" --seed 0 --local-loss --gather-with-grad"""
# A name built to break out of quotes, with payloads that use only shell builtins (echo and a
# redirection), so they would write a pwned-* file even where no other command is found.
HOSTILE = "it's a \"run\" $HOME `echo x > pwned-backtick`; echo x > pwned-semicolon $(echo x > pwned-dollar) & end"
TINY = ("--model", "bmclip-tiny", "--batch-size", "16", "--epochs", "2", "--workers", "0")


def sbatch_values(script: str) -> dict[str, str | None]:
    """The #SBATCH options of a script as sbatch reads them (shell-style quoting), name -> value."""
    values: dict[str, str | None] = {}
    for line in script.splitlines():
        if line.startswith("#SBATCH "):
            word = shlex.split(line[len("#SBATCH "):])[0]
            name, _, value = word.removeprefix("--").partition("=")
            values[name] = value if "=" in word else None
    return values


def launch_argv(script: str) -> list[str]:
    """The srun command of a script as the shell splits it (without the trailing `&`)."""
    start = script.index("\nsrun ")
    command = script[start:script.index(" &\n", start)]
    return shlex.split(command.replace("\\\n", " "))


def open_clip_args(script: str) -> list[str]:
    argv = launch_argv(script)
    return argv[argv.index(WORKER_MODULE) + 2:]


def bash_syntax_ok(script: str) -> bool:
    return subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False).returncode == 0


def test_four_nodes_of_eight_gpus_match_the_golden_file(tmp_path: Path):
    result = run_bmclip("slurm-gen", *CLUSTER_JOB, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if os.environ.get("BMCLIP_UPDATE_GOLDEN"):
        GOLDEN.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == GOLDEN.read_text(encoding="utf-8")
    assert bash_syntax_ok(result.stdout)
    assert list(tmp_path.iterdir()) == [], "printing the file must write nothing"
    assert "it must exist where the job runs" in result.stderr


def test_the_golden_job_launches_what_train_would_on_each_node():
    script = GOLDEN.read_text(encoding="utf-8")
    options = sbatch_values(script)
    assert list(options) == sorted(options) and set(options) <= BMCLIP_SBATCH_OPTIONS
    assert options | {"output": None} == {
        "account": "biomed-lab", "chdir": "/scratch/bmclip", "cpus-per-task": "72", "gres": "gpu:8", "job-name": "vit-b-32-biomedica",
        "mem": "480G", "nodes": "4", "ntasks-per-node": "1", "open-mode": "append", "output": None, "partition": "gpu", "requeue": None,
        "signal": "B:USR1@120", "time": "2-00:00:00", "wait-all-nodes": "1"}
    assert options["output"] == "/scratch/bmclip/logs/vit-b-32-biomedica/%x-%j.out"
    argv = launch_argv(script)
    assert argv[:argv.index("-m")] == ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
                                       "--output=${RUN_DIR//%/%%}/ranks/launcher-node%n-%N.log", "python"]
    from torch.distributed.run import get_args_parser

    launcher = get_args_parser().parse_args(argv[7:argv.index(WORKER_MODULE) + 1])
    assert (launcher.nnodes, launcher.nproc_per_node, launcher.rdzv_backend) == ("4", "8", "c10d")
    assert (launcher.rdzv_endpoint, launcher.rdzv_id) == ("${RDZV_HOST}:${RDZV_PORT}", "${SLURM_JOB_ID}")
    assert '"--rdzv-endpoint=${RDZV_HOST}:${RDZV_PORT}"' in script
    args = parse_args(open_clip_args(script))
    assert (args.batch_size, args.precision, args.resume, args.grad_clip_norm) == (256, "amp", "latest", 1.0)
    assert args.dataset_resampled and args.train_num_samples == 24000000


def test_seed_slurm_recipe_in_the_readme_trains_what_the_seed_script_trains(tmp_path: Path):
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- seed-slurm -->\n```bash\n(.*?)```", text, flags=re.S)
    assert block, "docs/training.md lacks the <!-- seed-slurm --> recipe"
    argv = shlex.split(block.group(1).replace("\\\n", " "))[2:]
    result = run_bmclip("slurm-gen", *argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    script = (tmp_path / "open_clip.sbatch").read_text()
    options = sbatch_values(script)
    assert (options["nodes"], options["gres"], options["account"], options["partition"]) == (
        "32", "gpu:4", "ACCOUNT_NAME", "PARTITION_NAME")
    assert options["chdir"] == "/shared/open_clip" and "conda activate open_clip" in script
    ours = vars(parse_args(open_clip_args(script)))
    seed = vars(parse_args(shlex.split(SEED_SBATCH_ARGS.replace("/path_to_biomedica_tars", "/shared/biomedica"))))
    ours["logs"], seed["logs"] = os.path.normpath(ours["logs"]), os.path.normpath(seed["logs"])
    # bmclip names the reader, counts an epoch (the seed's sizes.json is not on this machine) and resumes after a requeue.
    differences = {key for key in ours if ours[key] != seed[key]}
    assert differences == {"dataset_type", "train_num_samples", "resume"}, {k: (ours[k], seed[k]) for k in differences}
    yaml_result = run_bmclip("slurm-gen", "--config", str(REPO / "examples" / "seed-slurm.yaml"), *argv[argv.index("--nodes"):],
                             cwd=tmp_path)
    assert yaml_result.returncode == 0, yaml_result.stderr
    assert (tmp_path / "open_clip.sbatch").read_text() == script


def test_cpu_job_with_ranks_per_node(invoke, demo_data):
    result = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0", "--nproc-per-node", "3")
    assert result.exit_code == 0, result.stderr
    options = sbatch_values(result.stdout)
    assert "gres" not in options and options["cpus-per-task"] == "3" and options["nodes"] == "1"
    assert re.fullmatch(r"\d{8}-\d{6}-bmclip-tiny", options["job-name"]), "the run name is fixed in the file, for every restart"
    assert parse_args(open_clip_args(result.stdout)).name == options["job-name"]
    assert "--nproc-per-node=3" in launch_argv(result.stdout)
    assert parse_args(open_clip_args(result.stdout)).precision == "fp32"
    assert "SLURM does not create the folder of its log" in result.stderr


def test_a_lora_job_hands_its_settings_to_the_worker_on_every_node(invoke, demo_data):
    result = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0", "--lora-rank", "4",
                    "--val-zeroshot", str(demo_data.heldout_csv), "--keep-best", "zeroshot-top1")
    assert result.exit_code == 0, result.stderr
    assert bash_syntax_ok(result.stdout)
    argv = launch_argv(result.stdout)
    worker = argv[argv.index(WORKER_MODULE) + 2:]
    settings = json.loads(worker[worker.index("--settings") + 1])
    assert settings["lora_rank"] == 4 and settings["keep_best"] == "zeroshot-top1"


def test_out_writes_the_file_and_the_run_folder_slurm_needs(invoke, demo_data):
    result = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--name", "run", "--gpus-per-node", "0",
                    "--out", "job.sbatch")
    assert result.exit_code == 0, result.stderr
    script = Path("job.sbatch").read_text()
    assert (Path("logs/run/slurm.sbatch").read_text()) == script
    saved = yaml.safe_load(Path("logs/run/bmclip.yaml").read_text())
    assert (saved["resume"], saved["nnodes"], saved["dataset_type"], saved["csv_separator"]) == ("auto", 1, "csv", ",")
    assert sbatch_values(script)["output"] == f"{Path.cwd() / 'logs' / 'run'}/%x-%j.out"
    assert "sbatch job.sbatch" in result.stdout
    again = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--name", "run", "--gpus-per-node", "0",
                   "--out", "job.sbatch")
    assert again.exit_code == 0, "regenerating the job of an existing run folder is allowed: the job resumes it"


def test_out_into_a_missing_folder_or_onto_a_folder_is_one_line_and_nothing_is_written(invoke, demo_data):
    job = ("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--name", "run", "--gpus-per-node", "0")
    for out, expected in (("jobs/run.sbatch", "--out: folder 'jobs' does not exist; create it first (mkdir -p jobs)"),
                          (".", "--out: '.' is a folder; pass the job file's name, e.g. --out job.sbatch")):
        result = invoke(*job, "--out", out)
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
        assert len(errors) == 1 and expected in errors[0], result.stderr
        assert list(Path.cwd().iterdir()) == []


def test_no_file_is_loaded_with_torch_a_run_with_checkpoints_is_left_for_the_job_to_resume(tmp_path: Path, demo_data):
    checkpoints = tmp_path / "logs" / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "epoch_1.pt").write_bytes(b"not loaded here: the job picks its newest complete checkpoint when it starts")
    (tmp_path / "weights.pt").write_bytes(b"not loaded here either")
    args = ("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--pretrained", str(tmp_path / "weights.pt"),
            "--logs", str(tmp_path / "logs"), "--name", "run", "--gpus-per-node", "0")
    assert "torch" not in imported_modules(*args)
    result = run_bmclip(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert parse_args(open_clip_args(result.stdout)).resume == "latest"


def test_hostile_paths_and_values_stay_inert(tmp_path: Path, demo_data):
    folder = tmp_path / HOSTILE
    folder.mkdir()
    train_csv = folder / "train.csv"
    train_csv.write_text(demo_data.train_csv.read_text())  # its image paths are absolute
    logs = folder / "logs"
    result = run_bmclip("slurm-gen", "--train-data", str(train_csv), *TINY, "--logs", str(logs), "--name", HOSTILE,
                        "--gpus-per-node", "0", "--venv", str(folder / "venv"), "--partition", HOSTILE + "\\", "--account", "a;b",
                        "--constraint", "$(x)", "--chdir", str(folder), "--", "--wandb-notes", HOSTILE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert bash_syntax_ok(script)
    options = sbatch_values(script)
    assert (options["partition"], options["account"], options["constraint"], options["chdir"]) == (
        HOSTILE + "\\", "a;b", "$(x)", str(folder))
    assert options["job-name"] == HOSTILE
    args = parse_args(open_clip_args(script))
    assert (args.train_data, args.logs, args.name, args.wandb_notes) == (str(train_csv), str(logs), HOSTILE, HOSTILE)
    # Run it for real outside SLURM with no command on PATH: every line is executed, builtins still work.
    ran = subprocess.run(["/bin/bash", "-c", script, "job"], cwd=tmp_path, env={"PATH": str(tmp_path / "nothing"), "SLURM_JOB_ID": "7",
                         "SLURM_JOB_NODELIST": "node1"}, capture_output=True, text=True, timeout=30, check=False)
    assert "bmclip: job 7" in ran.stdout, ran.stderr
    assert "srun: command not found" in ran.stderr and ran.returncode == 127
    assert not list(tmp_path.rglob("pwned*")), "a value was executed"


def test_outside_slurm_the_script_stops_at_once(tmp_path: Path):
    ran = subprocess.run(["bash", str(GOLDEN)], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=False)
    assert ran.returncode != 0 and "submit this file with sbatch" in ran.stderr


@pytest.mark.parametrize(("args", "expected"), [
    ((), "--gpus-per-node: is missing"),
    (("--gpus-per-node", "2", "--nproc-per-node", "4"), "--nproc-per-node: 4 processes but only 2 GPUs"),
    (("--gpus-per-node", "0", "--precision", "amp"), "--precision: amp needs a GPU"),
    (("--gpus-per-node", "1", "--venv", "/v", "--conda-env", "c"), "--venv: and --conda-env both"),
    (("--gpus-per-node", "1", "--time", "two days"), "--time: 'two days' is not a SLURM time limit"),
    (("--gpus-per-node", "1", "--time", "2", "--signal-before", "120"), "--signal-before: 120 s is not shorter than the time limit 2"),
    (("--gpus-per-node", "1", "--mem", "lots"), "--mem: 'lots' is not a SLURM memory size"),
    (("--gpus-per-node", "1", "--partition", "gpu\n#SBATCH --time=1"), "--partition: 'gpu\\n#SBATCH --time=1' contains a line break"),
    (("--gpus-per-node", "1", "--sbatch", "output=/tmp/x"), "--sbatch: --output is set by bmclip slurm-gen"),
    (("--gpus-per-node", "1", "--sbatch", "mail type"), "--sbatch: 'mail type' is not KEY=VALUE"),
    (("--gpus-per-node", "1", "--job-name", "a/b"), "--job-name: 'a/b' contains '/'"),
    (("--gpus-per-node", "1", "--chdir", "relative"), "/relative' does not exist here"),
    (("--gpus-per-node", "1", "--setup", "if then"), "--setup: the job script is not valid bash"),
    (("--gpus-per-node", "1", "--setup", "export HF_TOKEN=hf_" + "a" * 34), "job file: it would contain a Hugging Face token"),
    (("--gpus-per-node", "1", "--train-data", "elsewhere.csv"), "--train-data: file 'elsewhere.csv' does not exist"),
    (("--gpus-per-node", "1", "--train-data", "elsewhere.csv", "--remote-paths"),
     "--csv-separator: cannot be sniffed from 'elsewhere.csv'"),
])
def test_bad_input_is_refused_with_one_line_and_nothing_written(invoke, demo_data, args: tuple[str, ...], expected: str):
    data = () if "--train-data" in args else ("--train-data", str(demo_data.train_csv))
    result = invoke("slurm-gen", *data, *TINY, *args, "--out", "job.sbatch")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert list(Path.cwd().iterdir()) == []


def test_credentials_in_the_environment_never_reach_the_file(invoke, demo_data, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    ok = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0", "--report-to", "wandb")
    assert ok.exit_code == 0 and "0123456789abcdef" not in ok.stdout
    leaked = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0",
                    "--setup", "export WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567")
    assert leaked.exit_code == 2 and "it would contain the value of WANDB_API_KEY" in leaked.stderr


def test_remote_paths_turn_missing_files_into_warnings(invoke):
    result = invoke("slurm-gen", "--train-data", "/cluster/data/train.csv", "--csv-separator", ",", "--pretrained", "/cluster/vit.pt",
                    *TINY, "--gpus-per-node", "1", "--remote-paths")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "it must exist where the job runs" in line]
    assert [w.split(": ")[2] for w in warnings] == ["--train-data", "--pretrained"]


def test_launch_settings_slurm_decides_are_dropped_with_a_warning(invoke, demo_data):
    Path("train.yaml").write_text(f"train_data: {demo_data.train_csv}\nmodel: bmclip-tiny\ngpus: '0,1'\n"
                                  "rdzv_endpoint: node001:29400\nnnodes: 2\n")
    result = invoke("slurm-gen", "--config", "train.yaml", "--gpus-per-node", "2")
    assert result.exit_code == 0, result.stderr
    assert "ignored in a SLURM job, which decides them: gpus=0,1, rdzv_endpoint=node001:29400" in result.stderr
    assert sbatch_values(result.stdout)["nodes"] == "2"
    assert "CUDA_VISIBLE_DEVICES" not in result.stdout and "node001" not in result.stdout


def test_login_node_without_open_clip_train_needs_remote_paths(tmp_path: Path, demo_data):
    stub = tmp_path / "no-train-extra" / "open_clip_train"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('bmclip[train] is not installed on this login node')\n")
    environment = {"PYTHONPATH": f"{REPO}{os.pathsep}{stub.parent}"}
    args = ("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0")
    refused = run_bmclip(*args, cwd=tmp_path, env=environment)
    assert refused.returncode == 2 and "bmclip: error: open_clip_train: is not installed" in refused.stderr
    allowed = run_bmclip(*args, "--remote-paths", cwd=tmp_path, env=environment)
    assert allowed.returncode == 0, allowed.stderr
    assert "open_clip_train: is not installed; it must exist where the job runs" in allowed.stderr
    assert "-m biomedclip_cli.rank.worker" in allowed.stdout


def test_submit_without_sbatch_says_where_to_run(tmp_path: Path, demo_data):
    result = run_bmclip("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0", "--submit",
                        cwd=tmp_path, env={"PATH": str(tmp_path / "nothing")})
    assert result.returncode == 2
    assert "bmclip: error: --submit: sbatch is not installed here; run on the cluster's login node" in result.stderr


def test_slurm_gen_imports_no_torch_and_starts_fast(tmp_path: Path):
    modules = imported_modules("slurm-gen", *CLUSTER_JOB)
    assert not modules & {"torch", "open_clip", "webdataset", "PIL", "numpy"}
    started = time.perf_counter()
    assert run_bmclip("slurm-gen", *CLUSTER_JOB, cwd=tmp_path).returncode == 0
    print(f"slurm-gen took {time.perf_counter() - started:.2f} s")


def test_resume_of_a_run_slurm_launches_submits_its_job_file_again(invoke, demo_data):
    assert invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--name", "run", "--gpus-per-node", "0",
                  "--out", "job.sbatch").exit_code == 0
    save_checkpoint(Path("logs/run"), 1)
    dry = invoke("resume", "logs/run", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout == "sbatch logs/run/slurm.sbatch\n"

    changed = invoke("resume", "logs/run", "--epochs", "5")
    assert changed.exit_code == 2
    assert "bmclip: error: --epochs: cannot change the job file 'logs/run/slurm.sbatch' of a run SLURM launched; " \
           "write a new one with bmclip slurm-gen" in changed.stderr

    local = invoke("resume", "logs/run", "--local", "--dry-run")
    assert local.exit_code == 0, local.stderr
    assert "-m torch.distributed.run" in local.stdout and "--resume" in local.stdout and "sbatch" not in local.stdout


def test_resume_of_a_finished_slurm_run_submits_nothing(invoke, demo_data):
    assert invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--name", "run", "--gpus-per-node", "0",
                  "--out", "job.sbatch").exit_code == 0
    save_checkpoint(Path("logs/run"), 2)
    result = invoke("resume", "logs/run")
    assert result.exit_code == 0, result.stderr
    assert "bmclip: run 'logs/run' has finished: epoch 2 of 2" in result.stdout and "submitted" not in result.stderr


def test_rdzv_timeout_reaches_every_nodes_launcher(invoke, demo_data):
    result = invoke("slurm-gen", "--train-data", str(demo_data.train_csv), *TINY, "--gpus-per-node", "0", "--nodes", "2",
                    "--rdzv-timeout", "900")
    assert result.exit_code == 0, result.stderr
    assert "--rdzv-conf=join_timeout=900,read_timeout=900" in launch_argv(result.stdout)
