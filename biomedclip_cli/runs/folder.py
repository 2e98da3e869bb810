"""What a run folder <logs>/<name>/ holds: bmclip.yaml, launch.json, open_clip's out.log and params.txt, checkpoints/epoch_K.pt and
results.jsonl, tensorboard/, report/.

On several nodes the folder is shared: node 0 (global rank 0) writes all of the above, and every
other node K writes only its own node-K.log.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from biomedclip_cli.config import RESUME_AUTO, TrainConfig, build_config, config_to_yaml, load_config_file
from biomedclip_cli.partial_files import write_atomically
from biomedclip_cli.problems import ProblemFound, error

CONFIG_FILE = "bmclip.yaml"
LAUNCH_FILE = "launch.json"
LOG_FILE = "out.log"
NODE_LOG = re.compile(r"^node-(\d+)\.log$")  # node K's own log on several nodes; node 0 logs to out.log
NODE_LOG_GLOB = "node-*.log"
PARAMS_FILE = "params.txt"
LAUNCHER_MARKERS = (b"bmclip", b"biomedclip_cli")  # in the command line of a process that launched a run
CHECKPOINT_DIR = "checkpoints"
RESULTS_FILE = f"{CHECKPOINT_DIR}/results.jsonl"
TENSORBOARD_DIR = "tensorboard"
REPORT_DIR = "report"
SLURM_SCRIPT_FILE = "slurm.sbatch"  # written by bmclip slurm-gen: the run is SLURM's to launch and resume
EPOCH_CHECKPOINT = re.compile(r"^epoch_(\d+)\.pt$")
LOGGED_NUMBER = r"(?:[\d.e+-]+|-?nan|-?inf)"  # Python's float formatting: a diverged run logs nan or inf
TRAIN_LINE = re.compile(
    r"Train Epoch: (?P<epoch>\d+) \[\s*(?P<seen>\d+)/(?P<total>\d+) \((?P<percent>\d+)%\)\] "
    r"Data \(t\): (?P<data_time>[\d.]+) Batch \(t\): (?P<batch_time>[\d.]+), "
    rf"(?P<rate>[\d.]+)/s, .*?LR: (?P<lr>{LOGGED_NUMBER}).*?Loss: (?P<loss>{LOGGED_NUMBER}) \((?P<loss_avg>{LOGGED_NUMBER})\)"
)
LOGIT_SCALE = re.compile(rf"Logit Scale: (?P<scale>{LOGGED_NUMBER})")


def run_config_text(config: TrainConfig) -> str:
    """The resolved config as <run>/bmclip.yaml holds it (no secrets: it holds none).

    A resume from one of the run's own checkpoints is saved as `resume: auto`, so that training
    with the saved config again continues from the newest checkpoint then, not from this one.
    """
    return config_to_yaml(config.model_copy(update={"resume": RESUME_AUTO}) if resumes_own_checkpoint(config) else config)


def resumes_own_checkpoint(config: TrainConfig) -> bool:
    """True when the config resumes from an epoch_K.pt in its own run folder."""
    if config.resume is None or not EPOCH_CHECKPOINT.match(Path(config.resume).name):
        return False
    return Path(config.resume).resolve().parent == (config.run_dir() / CHECKPOINT_DIR).resolve()


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config a run was launched with, from <run>/bmclip.yaml (ProblemFound when missing or unreadable)."""
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise ProblemFound(error(str(run_dir), "is not a folder", "pass a run folder <logs>/<name> (bmclip runs lists them)"))
    if not path.is_file():
        raise ProblemFound(error(str(run_dir), f"has no {CONFIG_FILE}, so it was not started by bmclip train",
                                 "continue it with bmclip train --resume CHECKPOINT and the original options"))
    return build_config(load_config_file(path), {}, [], path)


@dataclass(frozen=True)
class LaunchRecord:
    """Where and by which bmclip process a run was last launched, and how that launch ended (None while it runs).

    On several nodes it is node 0's process (the one whose node holds global rank 0), and
    `published` says when the run state was written: after every node had met, so a node that
    started before it knows the record is its own job's.
    """

    cwd: str
    host: str
    pid: int
    started: str
    exit_status: int | None = None
    nodes: int = 1
    published: str | None = None
    cause: str | None = None  # the one line saying why a failed launch stopped

    def alive_here(self) -> bool:
        """True when the launching bmclip process still runs on this machine."""
        if self.exit_status is not None or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        return not cmdline.exists() or any(marker in cmdline.read_bytes() for marker in LAUNCHER_MARKERS)

    def same_launch(self, other: LaunchRecord) -> bool:
        """True when both records describe the same bmclip process's launch."""
        return (self.host, self.pid, self.started) == (other.host, other.pid, other.started)

    def to_json(self) -> str:
        """The record as launch.json holds it."""
        return json.dumps(asdict(self), indent=2) + "\n"


def this_launch(cwd: Path, nodes: int = 1) -> LaunchRecord:
    """The record of a launch by this process from `cwd` (relative paths are resolved there), starting now."""
    return LaunchRecord(str(cwd), socket.gethostname(), os.getpid(), now(), nodes=nodes)


def now() -> str:
    """This moment as launch records write it (ISO, to the second)."""
    return datetime.now().isoformat(timespec="seconds")


def publish_run_state(run_dir: Path, config_text: str, record: LaunchRecord) -> None:
    """Write the run's bmclip.yaml and launch.json (each replaced whole and synced, never half-written), as the launch of `record`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(run_dir / CONFIG_FILE, config_text)
    write_atomically(run_dir / LAUNCH_FILE, replace(record, published=now()).to_json())


def record_exit(run_dir: Path, status: int, cause: str | None = None) -> None:
    """Add the launch's exit status and the cause of a failure to <run>/launch.json (replaced whole and synced, like every state file)."""
    record = read_launch_record(run_dir)
    if record is not None:
        write_atomically(run_dir / LAUNCH_FILE, replace(record, exit_status=status, cause=cause).to_json())


def read_launch_record(run_dir: Path) -> LaunchRecord | None:
    """The run's launch record, or None when it has none (e.g. started by a pasted --dry-run line) or it is unreadable."""
    try:
        return LaunchRecord(**json.loads((run_dir / LAUNCH_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def published_since(record: LaunchRecord | None, started: str) -> bool:
    """True when the record's run state was written at or after `started` (an ISO time): by the job that began then, not an earlier one."""
    return record is not None and record.published is not None and record.published >= started


def node_logs(run_dir: Path) -> list[Path]:
    """The node-K.log files of a run on several nodes (node 0's log is out.log), lowest node first."""
    found = [(int(match.group(1)), path) for path in run_dir.glob(NODE_LOG_GLOB) if (match := NODE_LOG.match(path.name))]
    return [path for _, path in sorted(found)]


def node_log_name(node_rank: int) -> str:
    """The log file of node `node_rank` > 0 in the run folder (written by its first rank)."""
    return f"node-{node_rank}.log"


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """The run's epoch_K.pt files, oldest epoch first."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if EPOCH_CHECKPOINT.match(p.name)), key=checkpoint_epoch)


def checkpoint_epoch(checkpoint: Path) -> int:
    """The epoch number K of an epoch_K.pt file."""
    match = EPOCH_CHECKPOINT.match(checkpoint.name)
    if match is None:
        raise ValueError(f"not an epoch checkpoint: {checkpoint}")
    return int(match.group(1))


@dataclass(frozen=True)
class TrainProgress:
    """One 'Train Epoch' line of open_clip's log: where training was and how it went.

    `data_seconds` and `batch_seconds` are open_clip's per-step averages since the previous line
    (time waiting for the data loader, and the whole step including that wait).
    """

    epoch: int
    samples_seen: int
    samples_per_epoch: int
    samples_per_second: float
    lr: float
    loss: float
    data_seconds: float
    batch_seconds: float
    logit_scale: float | None = None


def train_progress(run_dir: Path) -> list[TrainProgress]:
    """Every progress line open_clip wrote to <run>/out.log so far (empty when there is no log yet)."""
    log = run_dir / LOG_FILE
    if not log.is_file():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [
        TrainProgress(int(m["epoch"]), int(m["seen"]), int(m["total"]), float(m["rate"]), float(m["lr"]), float(m["loss"]),
                      float(m["data_time"]), float(m["batch_time"]),
                      float(scale["scale"]) if (scale := LOGIT_SCALE.search(line)) else None)
        for line in lines
        if (m := TRAIN_LINE.search(line))
    ]


def read_params(run_dir: Path) -> dict[str, str]:
    """open_clip's <run>/params.txt ('name: value' per line) as a dict; empty when missing."""
    path = run_dir / PARAMS_FILE
    if not path.is_file():
        return {}
    pairs = (line.split(": ", 1) for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if ": " in line)
    return {key.strip(): value.strip() for key, value in pairs}
