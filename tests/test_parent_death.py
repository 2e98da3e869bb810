"""Processes tied to their parent's life still start where that parent is PID 1 (a container's first process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

CHILD = "from biomedclip_cli.rank.parent_death import die_with_parent; import signal; die_with_parent(signal.SIGKILL); print('child alive')"
AS_PID_1 = {
    # bmclip is PID 1 and launches torchrun through run_supervised (its preexec_fn ties the launcher to bmclip).
    "bmclip": f"""
        import os, sys
        from biomedclip_cli.launch.launcher import LaunchCommand, run_supervised
        assert os.getpid() == 1
        sys.exit(run_supervised(LaunchCommand([sys.executable, "-c", {CHILD!r}])))
        """,
    # torchrun is PID 1 and starts a rank, which ties itself to torchrun (as biomedclip_cli.rank.worker does).
    "launcher": f"""
        import os, subprocess, sys
        assert os.getpid() == 1
        sys.exit(subprocess.run([sys.executable, "-c", {CHILD!r}]).returncode)
        """,
}


def _pid_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _pid_namespaces_work(), reason="needs unshare --pid (root, or user namespaces)")
@pytest.mark.parametrize("pid_1", list(AS_PID_1))
def test_child_of_pid_1_is_not_taken_for_an_orphan(pid_1: str):
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(["unshare", "--pid", "--fork", sys.executable, "-c", textwrap.dedent(AS_PID_1[pid_1])],
                            env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "child alive\n"), result.stderr
