"""SLURM job files: a resolved TrainConfig and the job's resources rendered as one sbatch script.

The text is deterministic (sorted `#SBATCH` lines, no dates) and every value in it is shell-quoted,
so paths with spaces, quotes, `$`, backticks or `;` stay literal text; only `--setup` lines are
shell code on purpose. The script:
- starts one torch.distributed.run per node with srun (launch.srun_words), meeting at a c10d
  rendezvous on the allocation's first node, on a port derived from the job id;
- writes its log to the run folder as `%x-%j.out`, appending across requeues;
- traps SLURM's warning signal in the batch shell only (`--signal=B:USR1@S`, since open_clip_train
  has no handler and dies of any signal sent to the ranks) and requeues itself, at most
  `max_restarts` times; the training resumes from the run folder's newest complete checkpoint.
No secret is ever written: credentials reach the job through its environment (sbatch passes the
submitting shell's) or the tools' own login files.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from biomedclip_cli.checks.preflight import RESUME_FROM_RUN_FOLDER, default_run_name
from biomedclip_cli.config import RESUME_AUTO, SLURM_DECIDES, ResolvedConfig, TrainConfig, config_to_yaml
from biomedclip_cli.jobs.slurm_job import SlurmJob
from biomedclip_cli.launch.launcher import RDZV_HOST_VARIABLE, RDZV_PORT_VARIABLE, SRUN_ARGS, WORKER_MODULE, srun_words
from biomedclip_cli.launch.openclip_args import openclip_argv
from biomedclip_cli.problems import Problem, ProblemFound, error, warning
from biomedclip_cli.rank.protocol import CONSOLE_VARIABLE
from biomedclip_cli.runs.folder import CONFIG_FILE, SLURM_SCRIPT_FILE

LOG_PATTERN = "%x-%j.out"
JOB_END_MODULE = "biomedclip_cli.jobs.job_end"  # prints the summary at the end of the job
PORT_BASE, PORT_RANGE = 10000, 20000  # rendezvous ports 10000-29999: below Linux's ephemeral ports (32768+)
SECRET_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY")
HF_TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
TIME_PATTERN = re.compile(r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$")
MEMORY_PATTERN = re.compile(r"^\d+[KMGT]?$")
SBATCH_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
# sbatch options slurm-gen writes or has an option for, and those that would change its one-task-a-node layout.
BMCLIP_SBATCH_OPTIONS = frozenset({
    "nodes", "ntasks-per-node", "cpus-per-task", "job-name", "chdir", "output", "open-mode", "requeue", "signal", "wait-all-nodes",
    "gres", "partition", "account", "time", "mem", "qos", "constraint", "ntasks", "gpus", "gpus-per-node", "gpus-per-task",
})


def slurm_train_config(config: TrainConfig, nodes: int) -> tuple[TrainConfig, list[Problem]]:
    """The config as a SLURM job trains it, and warnings about what changed.

    SLURM decides the launch settings a workstation run names (GPU indices, rendezvous, node rank):
    values given for them are dropped with one warning. The run name is fixed now, so that every
    start of the job uses the same run folder; without --resume, the job resumes from that folder's
    newest checkpoint when it has one, which is what makes a requeue continue.
    """
    problems: list[Problem] = []
    ignored = {name: getattr(config, name) for name in SLURM_DECIDES
               if name in config.model_fields_set and getattr(config, name) is not None}
    if ignored:
        shown = ", ".join(f"{name}={value}" for name, value in ignored.items())
        problems.append(warning("--config", f"ignored in a SLURM job, which decides them: {shown}",
                                "drop them from the file to silence this"))
    if config.resume not in (None, *RESUME_FROM_RUN_FOLDER):
        problems.append(warning("--resume", f"a requeued job starts again from '{config.resume}', not from its own newest checkpoint",
                                f"drop --resume (the job then uses --resume {RESUME_AUTO}) unless that is what you want"))
    updates: dict[str, object] = {name: TrainConfig.model_fields[name].default for name in SLURM_DECIDES}
    updates["nnodes"] = nodes
    updates["name"] = config.name or default_run_name(config.model, datetime.now())
    if config.resume is None:
        updates["resume"] = RESUME_AUTO
    return config.model_copy(update=updates), problems


def job_run_dir(config: ResolvedConfig, job: SlurmJob) -> Path:
    """The run folder as the job sees it: <logs>/<name>, under the job's working folder when relative."""
    return Path(job.chdir) / config.run_dir()


def default_cpus_per_task(config: ResolvedConfig) -> int:
    """CPUs for each node's one task, which runs all its ranks: a core per rank and per data-loading worker."""
    return config.nproc_per_node * (config.workers + 1)


def sbatch_options(config: ResolvedConfig, job: SlurmJob) -> dict[str, str | None]:
    """The job's `#SBATCH` options, name -> value (None for a flag), from the resources and the config."""
    options: dict[str, str | None] = {
        "nodes": str(job.nodes),
        "ntasks-per-node": "1",
        "cpus-per-task": str(job.cpus_per_task or default_cpus_per_task(config)),
        "job-name": job.job_name or config.name,
        "chdir": job.chdir,
        "output": str(job_run_dir(config, job)).replace("%", "%%") + "/" + LOG_PATTERN,
        "open-mode": "append",
        "requeue": None,
        "signal": f"B:USR1@{job.signal_before}",
        "wait-all-nodes": "1",
    }
    if job.gpus_per_node > 0:
        options["gres"] = f"gpu:{job.gpus_per_node}"
    for name in ("partition", "account", "time", "mem", "qos", "constraint"):
        value = getattr(job, name)
        if value is not None:
            options[name] = value
    for item in job.sbatch:
        key, _, value = item.partition("=")
        options[key.removeprefix("--")] = value if "=" in item else None
    return options


def _sbatch_line(name: str, value: str | None) -> str:
    return f"#SBATCH --{name}" if value is None else f"#SBATCH --{name}={shlex.quote(value)}"


def _environment_lines(job: SlurmJob) -> list[str]:
    lines = ["export PYTHONUNBUFFERED=1", *job.setup]
    if job.venv is not None:
        lines.append(f"source {shlex.quote(str(Path(job.venv) / 'bin' / 'activate'))}")
    if job.conda_env is not None:
        lines += ['eval "$(conda shell.bash hook)"', f"conda activate {shlex.quote(job.conda_env)}"]
    return lines


def _launch_lines(words: list[str]) -> list[str]:
    """The srun command laid out one part a line: srun, the launcher, the worker, then each open_clip flag with its values."""
    python_at, worker_at = len(SRUN_ARGS), words.index(WORKER_MODULE) - 1
    groups = [words[:python_at], words[python_at:worker_at], words[worker_at:worker_at + 3]]
    for word in words[worker_at + 3:]:
        if word.startswith("--") or len(groups) == 3:
            groups.append([word])
        else:
            groups[-1].append(word)
    return [" ".join(group) for group in groups]


def render_sbatch(config: ResolvedConfig, job: SlurmJob) -> str:
    """The whole sbatch script for a resolved config (deterministic: the same inputs give the same text)."""
    options = sbatch_options(config, job)
    launch = _launch_lines(srun_words(config, openclip_argv(config), python=job.python))
    host, port = RDZV_HOST_VARIABLE, RDZV_PORT_VARIABLE
    lines = [
        "#!/bin/bash",
        "# Written by bmclip slurm-gen: regenerate it rather than edit it. Submit with: sbatch FILE",
        *(_sbatch_line(name, options[name]) for name in sorted(options)),
        "",
        ': "${SLURM_JOB_ID:?submit this file with sbatch}"',
        "set -uo pipefail",
        "",
        "# Environment. Credentials (HF_TOKEN, WANDB_API_KEY) come from the environment sbatch passes on,",
        "# or from the tools' own login files; none is written here.",
        *_environment_lines(job),
        "",
        "# The console: this file gets rank 0's progress lines and, at the end, the run's summary; every rank's own output",
        "# and each node's launcher output go to the run folder's ranks/.",
        f"RUN_DIR={shlex.quote(str(job_run_dir(config, job)))}",
        'mkdir -p "$RUN_DIR/ranks"',
        f'export {CONSOLE_VARIABLE}="$RUN_DIR/${{SLURM_JOB_NAME:-}}-${{SLURM_JOB_ID}}.out"  # this file',
        "started=$(date +%s)",
        "",
        "# Rendezvous: every node's torch.distributed.run meets the others on the allocation's first node,",
        f"# at a port derived from the job id ({PORT_BASE}-{PORT_BASE + PORT_RANGE - 1}, below Linux's ephemeral ports).",
        f'{host}="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f"{port}=$(( {PORT_BASE} + SLURM_JOB_ID % {PORT_RANGE} ))",
        "",
        f"# Preemption: SLURM sends USR1 to this shell {job.signal_before} s before the time limit. The job requeues",
        f"# itself (at most {job.max_restarts} times) and, started again, resumes from the run's newest complete checkpoint.",
        f"max_restarts={job.max_restarts}",
        "requeue_job() {",
        '    local restarts="${SLURM_RESTART_COUNT:-0}"',
        '    if (( restarts < max_restarts )); then',
        '        echo "bmclip: time limit near: requeueing job $SLURM_JOB_ID (restart $(( restarts + 1 )) of $max_restarts)"',
        '        scontrol requeue "$SLURM_JOB_ID"',
        "    else",
        '        echo "bmclip: time limit near: not requeueing job $SLURM_JOB_ID ($max_restarts restarts done)"',
        "    fi",
        "}",
        "trap requeue_job USR1",
        "",
        f'echo "bmclip: job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $SLURM_JOB_NODELIST, rendezvous ${host}:${port}"',
        " \\\n    ".join([f'{launch[0]} "--output=${{RUN_DIR//%/%%}}/ranks/launcher-node%n-%N.log"', *launch[1:]]) + " &",
        "training=$!",
        "# wait returns early whenever the trap runs: keep waiting until srun itself ends.",
        "while true; do",
        '    wait "$training"',
        "    status=$?",
        '    kill -0 "$training" 2>/dev/null || break',
        "done",
        f'{shlex.quote(job.python)} -m {JOB_END_MODULE} "$RUN_DIR" "$status" "$started" || true',
        'exit "$status"',
        "",
    ]
    return "\n".join(lines)


def _seconds(time_limit: str) -> int | None:
    """A SLURM time limit (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in seconds, or None when it does not parse."""
    match = TIME_PATTERN.match(time_limit)
    if match is None:
        return None
    if match["days"] is not None:
        days, hours, minutes, seconds = (int(match[key] or 0) for key in ("days", "dh", "dm", "ds"))
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    parts = [int(match[key]) for key in ("a", "b", "c") if match[key] is not None]
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]


def job_problems(config: ResolvedConfig, job: SlurmJob) -> list[Problem]:
    """Problems with the job's resources and with values that cannot go on an `#SBATCH` line."""
    problems: list[Problem] = []
    if job.venv is not None and job.conda_env is not None:
        problems.append(error("--venv", "and --conda-env both activate a Python environment", "pass one of them"))
    if job.time is not None:
        seconds = _seconds(job.time)
        if seconds is None:
            problems.append(error("--time", f"'{job.time}' is not a SLURM time limit",
                                  "e.g. --time 2-00:00:00 (days-hours:minutes:seconds) or --time 90 (minutes)"))
        elif seconds <= job.signal_before:
            problems.append(error("--signal-before", f"{job.signal_before} s is not shorter than the time limit {job.time}",
                                  "lower --signal-before or raise --time"))
    if job.mem is not None and not MEMORY_PATTERN.match(job.mem):
        problems.append(error("--mem", f"'{job.mem}' is not a SLURM memory size", "e.g. --mem 64G"))
    name = job.job_name or config.name or ""
    if "/" in name:
        problems.append(error("--job-name" if job.job_name else "--name",
                              f"'{name}' contains '/', which SLURM's log file name %x cannot hold",
                              "pass --job-name without '/'"))
    if "\\" in str(job_run_dir(config, job)):
        problems.append(error("--logs", f"the run folder '{job_run_dir(config, job)}' contains a backslash, "
                              "which turns off SLURM's %x/%j in log names",
                              "use a path without backslashes"))
    problems.extend(_sbatch_key_problems(job))
    for option, value in sbatch_options(config, job).items():
        if value is not None and CONTROL_CHARACTERS.search(value):
            problems.append(error(f"--{option}",
                                  f"{value!r} contains a line break or control character, which cannot go on an #SBATCH line",
                                  "remove it"))
    return problems


def _sbatch_key_problems(job: SlurmJob) -> list[Problem]:
    for item in job.sbatch:
        key = item.partition("=")[0].removeprefix("--")
        if not SBATCH_KEY_PATTERN.match(key):
            return [error("--sbatch", f"'{item}' is not KEY=VALUE with an sbatch option name as KEY", "e.g. --sbatch mail-type=END")]
        if key in BMCLIP_SBATCH_OPTIONS:
            return [error("--sbatch", f"--{key} is set by bmclip slurm-gen (one task a node runs all its ranks)",
                          "use slurm-gen's own options (bmclip slurm-gen --help)")]
    return []


def secret_problems(text: str, environment: Mapping[str, str] | None = None) -> list[Problem]:
    """A problem if the job text holds a credential: a Hugging Face token, or the value of a credential variable set here."""
    environment = os.environ if environment is None else environment
    leaked = [name for name in SECRET_VARIABLES if len(environment.get(name, "")) >= 8 and environment[name] in text]
    if leaked or HF_TOKEN_PATTERN.search(text):
        what = f"the value of {leaked[0]}" if leaked else "a Hugging Face token"
        return [error("job file", f"it would contain {what}",
                      "leave credentials out: sbatch passes your environment (export HF_TOKEN before submitting) "
                      "and the tools read their login files")]
    return []


def syntax_problem(text: str) -> Problem | None:
    """A problem if bash (where installed) finds a syntax error in the script, e.g. from a --setup line; nothing is run."""
    bash = shutil.which("bash")
    if bash is None:
        return None
    checked = subprocess.run([bash, "-n"], input=text, capture_output=True, text=True, check=False)
    if checked.returncode == 0:
        return None
    reason = checked.stderr.strip().splitlines()[-1] if checked.stderr.strip() else "syntax error"
    return error("--setup", f"the job script is not valid bash: {reason.split(': ', 1)[-1]}", "fix the --setup lines")


def out_problems(out: Path | None) -> list[Problem]:
    """Problems writing the job file to --out: it must name a file in a folder that exists (a mistyped folder is not created)."""
    if out is None:
        return []
    if out.is_dir():
        return [error("--out", f"'{out}' is a folder", f"pass the job file's name, e.g. --out {out / 'job.sbatch'}")]
    if not out.parent.is_dir():
        return [error("--out", f"folder '{out.parent}' does not exist",
                      f"create it first (mkdir -p {out.parent}), or write the file elsewhere")]
    return []


def submit(script: Path, option: str = "--submit") -> str:
    """Submit the script with sbatch and return the job id (raises ProblemFound about `option` when sbatch is missing or refuses)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ProblemFound(error(option, "sbatch is not installed here", "run on the cluster's login node, or submit the file yourself"))
    result = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit status {result.returncode}"
        raise ProblemFound(error(option, f"sbatch refused '{script}': {reason}", "fix the job options, then submit again"))
    return result.stdout.strip().split(";")[0]


def queued_job_problems(script: Path) -> list[Problem]:
    """An error when a job of the script's job name is still queued or running (where squeue is installed):
    a second would train the same run."""
    squeue = shutil.which("squeue")
    match = re.search(r"^#SBATCH --job-name=(.+)$", script.read_text(encoding="utf-8"), re.MULTILINE)
    if squeue is None or match is None:
        return []
    name = shlex.split(match.group(1))[0]
    try:
        result = subprocess.run([squeue, "--noheader", f"--name={name}", "--format=%i %T"], capture_output=True, text=True, check=False,
                                timeout=30)
    except subprocess.TimeoutExpired:  # no controller answers: nothing is known to be queued
        return []
    jobs = result.stdout.split() if result.returncode == 0 else []
    if not jobs:
        return []
    return [error(str(script.parent), f"job {jobs[0]} ({name}) is still {jobs[1].lower()}",
                  f"wait for it to end, or cancel it first: scancel {jobs[0]}")]


def write_job_files(config: ResolvedConfig, job: SlurmJob, text: str) -> Path:
    """Create the run folder (SLURM does not create the folder of its log) with bmclip.yaml and the script; return the script."""
    run_dir = job_run_dir(config, job)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(config_to_yaml(config), encoding="utf-8")
    script = run_dir / SLURM_SCRIPT_FILE
    script.write_text(text, encoding="utf-8")
    return script
