"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd from Debian's slurm-wlm and munge.

Everything lives in one folder (config, state, spool, logs, the munge key and socket), the daemons
listen on free ports, and `stop` ends every daemon this module started, by pid. Clients reach the
cluster through SLURM_CONF, which sbatch passes on to the jobs (so `scontrol requeue` in a job works).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def slurm_conf(folder: Path, host: str, cpus: int) -> str:
    """A slurm.conf for one node (this machine) and one default partition; requeued jobs may start again after 5 s."""
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
        "SchedulerParameters=sched_interval=1",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        f"NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN",
        f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP",
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
        """Poll the job until it reaches a final state (or fail the test after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = self.job(job_id)
            if fields["JobState"] in FINAL_STATES:
                return fields
            time.sleep(1)
        raise AssertionError(f"job {job_id} still {self.job(job_id)['JobState']} after {timeout} s")

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop every daemon started for it (newest first), by pid."""
        if self.daemons and self.daemons[-1].poll() is None:
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "--noheader", check=False).stdout.strip():
                time.sleep(1)
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        self.daemons.clear()


def _start(cluster: SlurmCluster, *command: str) -> None:
    log = (cluster.folder / f"{Path(command[0]).name}.stdout").open("w")
    cluster.daemons.append(subprocess.Popen(list(command), env=cluster.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


def start_cluster(folder: Path, timeout: float = 60) -> SlurmCluster:
    """Start munged, slurmctld and slurmd (in the foreground, as children of this process) and wait until the node is idle."""
    for name in ("state", "spool"):
        (folder / name).mkdir(parents=True)
    folder.chmod(0o700)
    host = socket.gethostname()
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, host, os.cpu_count() or 1), encoding="utf-8")
    cluster = SlurmCluster(folder, {**os.environ, "SLURM_CONF": str(conf)})
    try:
        key = folder / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        _start(cluster, "munged", "--foreground", "--force", f"--socket={folder / 'munge.socket'}", f"--key-file={key}",
               f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munged.seed'}")
        _wait(lambda: (folder / "munge.socket").exists(), timeout, "munged did not create its socket")
        _start(cluster, "slurmctld", "-D", "-f", str(conf))
        _start(cluster, "slurmd", "-D", "-f", str(conf))
        _wait(lambda: cluster.run("sinfo", "--noheader", "--format=%t", check=False).stdout.strip() == "idle", timeout,
              "the node did not become idle")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait(ready, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{failure} within {timeout} s")
