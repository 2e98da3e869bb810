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


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None) -> None:
    """Have the kernel send `signum` to this process when its parent exits (Linux; elsewhere nothing happens).

    `parent` is the pid the parent should have (a preexec_fn gets the launcher's own pid, taken
    before the fork); None takes the current parent. If the parent is no longer that process by the
    time the kernel is asked, it has died already and the signal is sent at once. A parent that is
    PID 1 is not taken for a dead one: in a container, bmclip or the launcher may well be PID 1.
    """
    if not sys.platform.startswith("linux"):
        return
    expected = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return
    if os.getppid() != expected:
        os.kill(os.getpid(), signum)
