"""Tie a process's life to its parent's, so that no training process outlives the one that launched it.

torch.distributed.run starts every rank in a session of its own, so a SIGKILL to the launcher (or
to bmclip above it: the OOM killer, a closed terminal, `kill -9`) would leave ranks training on
as orphans. On Linux a process can ask the kernel for a signal when its parent dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
ORPHAN_PARENT_PID = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have the kernel send `signum` to this process when its parent exits (Linux; elsewhere nothing happens).

    If the parent is already gone by the time this runs, the signal is sent at once.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return
    if parent == ORPHAN_PARENT_PID or os.getppid() != parent:
        os.kill(os.getpid(), signum)
