"""Inside every rank: --hang-timeout, a watchdog that turns a hung run into a stopped one with every rank's stacks on disk.

A rank that blocks (a data read from a stale network mount, a collective whose peer is stuck)
leaves the others waiting in NCCL until its timeout, 30 minutes by default, and then ends with
NCCL's text. Here each rank counts its optimizer steps (a global optimizer step hook) while an
epoch trains (open_clip's train_one_epoch; evaluation and checkpoint saves between epochs are not
watched). When a rank has finished no step for --hang-timeout seconds, its watchdog thread:
1. writes the Python stacks of all its threads to <run>/stacks/rank-R.txt (faulthandler, which
   needs no lock the stuck thread may hold);
2. waits, up to PEERS_GRACE_S, for the other ranks of its node to have written theirs (they
   stopped stepping at the same moment, so their watchdogs fire within a poll of each other);
3. records HangTimeout in its torchelastic error file and ends the process, since the stuck main
   thread cannot be interrupted. torchrun stops the other ranks, and the run's summary gives the
   cause in words, as for any failed rank; the run resumes from its last checkpoint.
The process group's own timeout is set PG_GRACE_S beyond --hang-timeout, so that collectives still
end (after the watchdog has had its say) in a run whose watchdog could not act.
"""

from __future__ import annotations

import datetime
import faulthandler
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.optim.optimizer import register_optimizer_step_post_hook

from biomedclip_cli.partial_files import partial_path
from biomedclip_cli.rank.error_file import RankErrorHandler

STACKS_FOLDER = "stacks"
POLL_S = 1.0
PEERS_GRACE_S = 30.0
PG_GRACE_S = 120
HANG_EXIT_CODE = 1


class HangTimeout(RuntimeError):
    """No training step finished for --hang-timeout seconds."""


class HangWatchdog:
    """One rank's watchdog (see the module docstring); `timeout_s` of 0 watches nothing."""

    def __init__(self, timeout_s: float, run_dir: Path, environ: dict[str, str] | os._Environ) -> None:
        self.timeout_s, self.stacks = timeout_s, run_dir / STACKS_FOLDER
        self.rank = int(environ.get("RANK", "0"))
        first_local = self.rank - int(environ.get("LOCAL_RANK", "0"))
        self.node_ranks = range(first_local, first_local + int(environ.get("LOCAL_WORLD_SIZE", "1")))
        self.armed_since: float | None = None
        self.last_step = 0.0
        self._started = False

    def watching(self, train_one_epoch: Callable[..., Any]) -> Callable[..., Any]:
        """open_clip's train_one_epoch, watched from its start to its return."""

        def train_watched(*args: Any, **kwargs: Any) -> Any:
            self._start()
            self.last_step = self.armed_since = time.monotonic()
            try:
                return train_one_epoch(*args, **kwargs)
            finally:
                self.armed_since = None

        return train_watched

    def step_finished(self, *_: Any) -> None:
        """An optimizer step ended (torch's optimizer step post hook)."""
        self.last_step = time.monotonic()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        register_optimizer_step_post_hook(self.step_finished)
        threading.Thread(target=self._watch, name="bmclip-hang-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(POLL_S)
            if self.armed_since is not None and time.monotonic() - self.last_step >= self.timeout_s:
                self._stop_the_run()

    def _stop_the_run(self) -> None:
        self.stacks.mkdir(parents=True, exist_ok=True)
        mine = self.stacks / f"rank-{self.rank}.txt"
        with partial_path(mine).open("w", encoding="utf-8") as stream:
            stream.write(f"rank {self.rank} (pid {os.getpid()}): no training step for {self.timeout_s:g} s; the Python stacks of its "
                         "threads, the most recent call first:\n\n")
            stream.flush()
            faulthandler.dump_traceback(stream, all_threads=True)
        partial_path(mine).replace(mine)
        deadline = time.monotonic() + PEERS_GRACE_S
        while time.monotonic() < deadline and not all((self.stacks / f"rank-{rank}.txt").exists() for rank in self.node_ranks):
            time.sleep(POLL_S / 10)
        RankErrorHandler().record_exception(HangTimeout(
            f"no training step finished for {self.timeout_s:g} s (--hang-timeout): a rank is stuck; the Python stacks of every rank are "
            f"in {self.stacks}/ (the stuck one is the rank not waiting in a collective)"))
        os._exit(HANG_EXIT_CODE)


def with_timeout(init_process_group: Callable[..., Any], timeout_s: float) -> Callable[..., Any]:
    """torch.distributed.init_process_group with its timeout set PG_GRACE_S past the hang timeout, unless the caller set one."""

    def init_with_timeout(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", datetime.timedelta(seconds=timeout_s + PG_GRACE_S))
        return init_process_group(*args, **kwargs)

    return init_with_timeout
