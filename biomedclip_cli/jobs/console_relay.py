"""The console of a supervised launch: rank 0's view of training relayed to this process's stderr, the rest kept in files.

bmclip creates a FIFO and names it to the ranks (rank/console.py); rank 0 writes its
progress there and a thread here copies it to stderr as it comes, bytes unchanged (rich's bar
included, when stderr is a terminal). The launcher's own output (torchrun's notices, and anything a
rank prints before it has taken its log file) goes to a file, kept in the run folder afterwards;
its `bmclip: error:` lines are shown when the launch fails. With `verbose`, the launcher keeps
this process's stdout and stderr as before, and rank 0 shows open_clip's log lines.

The scratch folder names its run folder and process (owner.json): a launch whose bmclip process was
killed outright (kill -9) cannot keep its launcher log, so the next launch of the run on that machine
collects it (`collect_leftover_logs`) and removes the folder.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from biomedclip_cli.rank.protocol import CONSOLE_TTY_VARIABLE, CONSOLE_VARIABLE, RANK_LOGS, VERBOSE_VARIABLE

READ_CHUNK = 65536
SCRATCH_PREFIX = "bmclip-launch-"  # the launch's folder in the temporary directory
OWNER_FILE = "owner.json"
LAUNCHER_LOG = "launcher.log"
POLL_S = 0.1


@dataclass
class Relay:
    """What the launch needs from the relay: the variables for the ranks, and where the launcher's output goes (None: inherited)."""

    env: dict[str, str]
    output: IO[bytes] | None
    output_path: Path | None

    def errors(self) -> list[str]:
        """The `bmclip: error:` lines the launch printed before its ranks took their log files."""
        if self.output_path is None or not self.output_path.is_file():
            return []
        lines = self.output_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return list(dict.fromkeys(line.removeprefix("bmclip: error: ") for line in lines if line.startswith("bmclip: error: ")))

    def keep_in(self, run_dir: Path) -> None:
        """Copy the launcher's output into the run folder's ranks/ (when the run folder exists)."""
        if self.output_path is not None and self.output_path.is_file() and run_dir.is_dir():
            folder = run_dir / RANK_LOGS
            folder.mkdir(exist_ok=True)
            shutil.copyfile(self.output_path, folder / _launcher_log_name(socket.gethostname(), os.getpid()))


def _launcher_log_name(host: str, pid: int) -> str:
    return f"launcher-{host}-{pid}.log"


def collect_leftover_logs(run_dir: Path) -> list[Path]:
    """The launcher logs of this run's earlier launches here whose bmclip process is gone without keeping them, moved into the run
    folder's ranks/ (when it has one); their scratch folders removed. The logs kept."""
    kept = []
    target = run_dir.resolve()
    for scratch in sorted(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*")):
        try:
            owner = json.loads((scratch / OWNER_FILE).read_text(encoding="utf-8"))
            mine = owner["run_dir"] == str(target) and owner["host"] == socket.gethostname() and not _alive(int(owner["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not mine:
            continue
        log = scratch / LAUNCHER_LOG
        if log.is_file() and (run_dir / RANK_LOGS).is_dir():
            kept.append(Path(shutil.copyfile(log, run_dir / RANK_LOGS / _launcher_log_name(owner["host"], int(owner["pid"])))))
        shutil.rmtree(scratch, ignore_errors=True)
    return kept


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def relayed_console(scratch: Path, run_dir: Path, *, verbose: bool, terminal: bool) -> Iterator[Relay]:
    """Relay rank 0's console to stderr for the duration of the block (see the module docstring); `scratch` is a folder made
    with SCRATCH_PREFIX for this launch of the run in `run_dir`."""
    owner = {"run_dir": str(run_dir.resolve()), "host": socket.gethostname(), "pid": os.getpid()}
    (scratch / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    fifo = scratch / "console"
    os.mkfifo(fifo)
    descriptor = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # read-write: opening never blocks, and a writer closing is no EOF
    stop = threading.Event()

    def copy() -> None:
        while True:
            ready, _, _ = select.select([descriptor], [], [], POLL_S)
            if ready:
                try:
                    chunk = os.read(descriptor, READ_CHUNK)
                except BlockingIOError:
                    chunk = b""
                if chunk:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.buffer.flush()
                    continue
            if stop.is_set():
                return

    thread = threading.Thread(target=copy, name="bmclip-console", daemon=True)
    thread.start()
    env = {CONSOLE_VARIABLE: str(fifo), **({CONSOLE_TTY_VARIABLE: "1"} if terminal else {}), **({VERBOSE_VARIABLE: "1"} if verbose else {})}
    output_path = None if verbose else scratch / LAUNCHER_LOG
    output = output_path.open("wb") if output_path is not None else None
    try:
        yield Relay(env, output, output_path)
    finally:
        stop.set()
        thread.join()
        os.close(descriptor)
        if output is not None:
            output.close()
