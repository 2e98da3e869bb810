"""Launcher command lines (torch.distributed.run, and srun for SLURM jobs) and the supervision of the launched processes.

The only module that knows torchrun's flags. The dry-run line and the real launch come from the
same LaunchCommand, so pasting the printed line starts exactly the training bmclip would start.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import IO

from biomedclip_cli.config import ResolvedConfig
from biomedclip_cli.rank.parent_death import die_with_parent
from biomedclip_cli.rank.protocol import WORKER_MODULE  # the worker's name, for the parent's floors and the tests
from biomedclip_cli.rank.settings import settings_args

LAUNCHER_MODULE = "torch.distributed.run"
ENDPOINT_PATTERN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)(?::(?P<port>\d+))?")


@dataclass(frozen=True)
class LaunchCommand:
    """A command to run: the folder it runs in (None: the current one), the environment variables it adds, and its argv."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def shell_line(self) -> str:
        """The whole command as one shell-quoted line: `cd FOLDER &&` when it has one, environment assignments, argv."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        change_folder = [f"cd {shlex.quote(self.cwd)} &&"] if self.cwd else []
        return " ".join([*change_folder, *assignments, shlex.join(self.argv)])


def rendezvous_address(endpoint: str) -> tuple[str, int | None] | None:
    """The host and port (None when not given) of a --rdzv-endpoint HOST[:PORT] ([v6:address] in brackets); None if it is not one."""
    match = ENDPOINT_PATTERN.fullmatch(endpoint)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return match.group("host"), int(port) if port is not None else None


def launcher_args(config: ResolvedConfig) -> list[str]:
    """torch.distributed.run's own flags for the config's launch settings.

    Without --rdzv-endpoint the run is on one node: --standalone, so runs side by side never fight
    over a fixed port, or 127.0.0.1 and --master-port when a port is given. With it, the nodes meet
    there: by torchrun's static rendezvous when --node-rank numbers this node (its host is node 0's
    address, its port node 0's port), else by c10d rendezvous, which numbers the nodes itself, under
    the id --rdzv-id (default: the run name). Either way a node gives up after --rdzv-timeout
    seconds without all its peers (c10d's read timeout too: a node started before the rendezvous
    host would otherwise stop trying to reach it after torch's 60 s).
    """
    args = [f"--nproc-per-node={config.nproc_per_node}"]
    if config.rdzv_endpoint is None:
        if config.master_port is not None:
            return args + ["--master-addr=127.0.0.1", f"--master-port={config.master_port}"]
        return args + ["--standalone"]
    args.append(f"--nnodes={config.nnodes}")
    if config.node_rank is None:
        return args + ["--rdzv-backend=c10d", f"--rdzv-endpoint={config.rdzv_endpoint}", f"--rdzv-id={config.rdzv_id or config.name}",
                       f"--rdzv-conf=join_timeout={config.rdzv_timeout},read_timeout={config.rdzv_timeout}"]
    host, port = rendezvous_address(config.rdzv_endpoint) or (config.rdzv_endpoint, None)  # preflight refuses a malformed endpoint
    return args + [f"--node-rank={config.node_rank}", f"--master-addr={host}", *([f"--master-port={port}"] if port is not None else []),
                   f"--rdzv-conf=timeout={config.rdzv_timeout}"]


def logger_environment(config: ResolvedConfig) -> dict[str, str]:
    """WANDB_DIR set to the run folder when logging to W&B, so its files (offline runs too) land beside the checkpoints, not in ./wandb.

    A WANDB_DIR the user exported is left alone.
    """
    if "wandb" in config.report_to.split(",") and "WANDB_DIR" not in os.environ:
        return {"WANDB_DIR": str(config.run_dir())}
    return {}


def torchrun_command(config: ResolvedConfig, openclip_args: list[str], python: str | None = None, cwd: str | None = None) -> LaunchCommand:
    """The torch.distributed.run command that starts bmclip's worker in every rank (run in `cwd` when given).

    The `--` after the worker module keeps torchrun from reading what follows (torchrun's --logs-specs
    would otherwise swallow open_clip's --logs); torchrun drops it. The run's settings for the ranks,
    if any differ from their defaults, come next (rank/settings.py) and end with a second `--` before
    open_clip's arguments.
    """
    env = {"CUDA_VISIBLE_DEVICES": config.gpus} if config.gpus else {}
    env.update(logger_environment(config))
    own = settings_args(config)
    argv = [python or sys.executable, "-m", LAUNCHER_MODULE, *launcher_args(config), "-m", WORKER_MODULE, "--",
            *([*own, "--"] if own else []), *openclip_args]
    return LaunchCommand(argv=argv, env=env, cwd=cwd)


# Shell variables the SLURM job script sets before srun (see jobs/slurm.py): the rendezvous host and port.
RDZV_HOST_VARIABLE = "RDZV_HOST"
RDZV_PORT_VARIABLE = "RDZV_PORT"
SLURM_RENDEZVOUS = {
    "rdzv_endpoint": f"${{{RDZV_HOST_VARIABLE}}}:${{{RDZV_PORT_VARIABLE}}}",
    "rdzv_id": "${SLURM_JOB_ID}",
}
SRUN_ARGS = ("srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1")


def srun_words(config: ResolvedConfig, openclip_args: list[str], python: str = "python") -> list[str]:
    """The shell words of a SLURM job's launch: srun starts one torch.distributed.run per node.

    Every node's launcher meets the others at the c10d rendezvous on the allocation's first node
    (the job script sets RDZV_HOST and RDZV_PORT); the rendezvous id is the job id, so a requeued
    job never meets a stale one. Each word is shell-quoted: values from the config stay literal
    text, and only the two rendezvous words, which launch.py writes itself, are double-quoted so
    that the job's shell expands their variables. `--gpus` is dropped: SLURM picks each node's GPUs.
    """
    node_config = config.model_copy(update={**SLURM_RENDEZVOUS, "gpus": None, "master_port": None, "node_rank": None})
    argv = [*SRUN_ARGS, *torchrun_command(node_config, openclip_args, python=python).argv]
    expanded = {f"--rdzv-endpoint={SLURM_RENDEZVOUS['rdzv_endpoint']}", f"--rdzv-id={SLURM_RENDEZVOUS['rdzv_id']}"}
    launcher_end = argv.index(WORKER_MODULE)
    return [f'"{word}"' if index < launcher_end and word in expanded else shlex.quote(word) for index, word in enumerate(argv)]


def run_supervised(command: LaunchCommand, private_env: dict[str, str] | None = None, output: IO[bytes] | None = None) -> int:
    """Run the command in its own process group and return its exit status.

    `private_env` adds variables that only this supervised launch needs (where the launcher records
    its failure, the run state handed to rank 0, its console): they are not part of the command's
    printed line. `output` takes the launcher's stdout and stderr (default: this process's).

    SIGINT and SIGTERM received here are passed to the launcher, which stops every rank; a second
    signal kills the launcher's group. The launcher gets SIGTERM if this process dies without
    passing anything on (SIGKILL), and each rank dies with the launcher (see worker.py), so no
    rank outlives the run. A run ended by a signal returns 128 + its number (130, 143).
    """
    process = subprocess.Popen(command.argv, env={**os.environ, **command.env, **(private_env or {})}, cwd=command.cwd, stdout=output,
                               stderr=subprocess.STDOUT if output is not None else None, start_new_session=True,
                               preexec_fn=functools.partial(die_with_parent, parent=os.getpid()))
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) > 1:
            _reap_group(process.pid)
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        _reap_group(process.pid)
        return 128 + received[0]
    return status if status >= 0 else 128 - status


def _reap_group(pgid: int) -> None:
    """Kill what is left of the launched process group (ranks that ignored the launcher's stop)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
