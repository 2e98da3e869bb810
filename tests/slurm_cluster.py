"""A real SLURM cluster for tests: munged, slurmctld and one slurmd per node, from Debian's slurm-wlm and munge.

Everything lives in one folder (config, state, spools, logs, the munge key and socket), the daemons
listen on free ports, and `stop` ends every daemon this module started, by pid. Clients reach the
cluster through SLURM_CONF, which sbatch passes on to the jobs (so `scontrol requeue` in a job works).

Two nodes are two slurmd daemons on this machine (`slurmd -N NAME`), each with its own port, spool,
pid file and log (`%n` in slurm.conf), both at 127.0.0.1. Their names are this machine's host name
and `localhost`, so that a job can reach its first node by name, as on a real cluster.
`SlurmdParameters=config_overrides` keeps slurmd from draining a node that shares its CPUs with
the other, and `cred_expire=5` lets a requeued job start again after seconds, not two minutes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from waiting import wait_until

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "scancel")
INSTALL_HINT = "apt-get install slurm-wlm munge (make test installs them)"
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"SLURM tests need {', '.join(missing)}: {INSTALL_HINT}"
    if os.geteuid() != 0:
        return "SLURM tests need root (slurmd starts job steps as their user)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_names(count: int) -> list[str]:
    """Names for `count` nodes on this machine that resolve to it (this host's name, then localhost)."""
    names = list(dict.fromkeys([socket.gethostname(), "localhost"]))
    if count > len(names):
        raise RuntimeError(f"this machine has names for {len(names)} test nodes, not {count}")
    return names[:count]


def slurm_conf(folder: Path, host: str, nodes: list[str], cpus: int) -> str:
    """A slurm.conf for `nodes` (slurmd daemons on this machine) and one default partition; requeued jobs may start again after 5 s."""
    return "\n".join([
        "ClusterName=bmclip-test",
        f"SlurmctldHost={host}",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder / 'munge.socket'},cred_expire=5",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SlurmUser=root",
        "SlurmdUser=root",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerParameters=batch_sched_delay=0,sched_interval=1",
        "SlurmdParameters=config_overrides",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}/%n",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd-%n.log'}",
        *(f"NodeName={name} NodeAddr=127.0.0.1 Port={_free_port()} CPUs={cpus} RealMemory=4000 State=UNKNOWN" for name in nodes),
        f"PartitionName=test Nodes={','.join(nodes)} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@dataclass
class SlurmCluster:
    """A running test cluster: its folder, the environment its clients need, and the daemons started for it."""

    folder: Path
    env: dict[str, str]
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client (sbatch, scontrol, ...) against this cluster."""
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def job(self, job_id: str) -> dict[str, str]:
        """The job's fields from `scontrol show job` (JobState, Restarts, ...)."""
        shown = self.run("scontrol", "--oneliner", "show", "job", job_id).stdout
        return dict(item.split("=", 1) for item in shown.split() if "=" in item)

    def wait_for_end(self, job_id: str, timeout: float) -> dict[str, str]:
        """Poll the job until it reaches a final state; its fields then (fail the test after `timeout` seconds, naming its state)."""

        def ended() -> dict[str, str] | None:
            fields = self.job(job_id)
            return fields if fields["JobState"] in FINAL_STATES else None

        try:
            return wait_until(ended, f"job {job_id} to end", timeout, poll=1)
        except AssertionError as late:
            raise AssertionError(f"{late}: it is still {self.job(job_id)['JobState']}") from None

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop every daemon started for it (newest first), by pid."""
        if self.daemons and self.daemons[-1].poll() is None:
            self.run("scancel", "--full", "--user=root", check=False)
            with contextlib.suppress(AssertionError):  # jobs still queued after 30 s end with the daemons below
                wait_until(lambda: not self.run("squeue", "--noheader", check=False).stdout.strip(), "the queue to empty", 30, poll=1)
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        self.daemons.clear()


def _start(cluster: SlurmCluster, *command: str, log_name: str | None = None) -> None:
    log = (cluster.folder / f"{log_name or Path(command[0]).name}.stdout").open("w")
    cluster.daemons.append(subprocess.Popen(list(command), env=cluster.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


def start_cluster(folder: Path, nodes: int = 1, timeout: float = 60) -> SlurmCluster:
    """Start munged, slurmctld and a slurmd per node (in the foreground, as children of this process); wait until every node is idle."""
    names = node_names(nodes)
    (folder / "state").mkdir(parents=True)
    for name in names:
        (folder / "spool" / name).mkdir(parents=True)
    folder.chmod(0o700)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, socket.gethostname(), names, os.cpu_count() or 1), encoding="utf-8")
    cluster = SlurmCluster(folder, {**os.environ, "SLURM_CONF": str(conf)})
    try:
        key = folder / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        _start(cluster, "munged", "--foreground", "--force", f"--socket={folder / 'munge.socket'}", f"--key-file={key}",
               f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munged.seed'}")
        wait_until(lambda: (folder / "munge.socket").exists(), "munged to create its socket", timeout, poll=0.5)
        _start(cluster, "slurmctld", "-D", "-f", str(conf))
        for name in names:
            _start(cluster, "slurmd", "-D", "-f", str(conf), "-N", name, log_name=f"slurmd-{name}")
        wait_until(lambda: cluster.run("sinfo", "--noheader", "--Node", "--format=%t", check=False).stdout.split() == ["idle"] * nodes,
                   f"the {nodes} node(s) to become idle", timeout, poll=0.5)
    except BaseException:
        cluster.stop()
        raise
    return cluster
