"""Inside every rank of a launch bmclip supervises: everything a rank prints goes to its log file, and rank 0 alone talks to the person.

bmclip's process hands its console to the ranks as a FIFO (BMCLIP_CONSOLE, which it reads and
copies to its own stderr) and says whether that is a terminal (BMCLIP_CONSOLE_TTY). Every rank
points its stdout and stderr at <run>/ranks/rank-R.log, so open_clip's parameter dump, the model's
repr, Python warnings and tracebacks from every rank are kept, in a file per process, and none of
them reaches the console. Rank 0 then shows training as it goes, from open_clip's own log records:
on a terminal a rich progress bar per epoch (samples, loss, samples/s, time left); elsewhere a
plain line every PLAIN_INTERVAL_S seconds within an epoch and one line per epoch (loss, samples/s,
time, and the validation and --val-zeroshot metrics when there are); bmclip's own records logged
with `extra={TO_CONSOLE: True}` (the trainable parameters) are shown as they are.
`--verbose` shows open_clip's log lines instead.
A SLURM job names its output file as the console (appended to, as SLURM does: the job script's own
lines, rank 0's progress and the summary end up together). A launch without BMCLIP_CONSOLE (a pasted
--dry-run line) prints as open_clip does.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from biomedclip_cli.console import TO_CONSOLE
from biomedclip_cli.rank.protocol import CONSOLE_TTY_VARIABLE, CONSOLE_VARIABLE, RANK_LOG_HEADER, RANK_LOGS, VERBOSE_VARIABLE
from biomedclip_cli.runs.folder import TRAIN_LINE

PLAIN_INTERVAL_S = 30.0
START_EPOCH = re.compile(r"^Start epoch (\d+)$")
EVAL_LINE = re.compile(r"^Eval Epoch: (\d+) (.*)$")
SHOWN_METRICS = ("val_loss", "image_to_text_R@1", "text_to_image_R@1")
ZERO_SHOT_LINE = re.compile(r"^bmclip: epoch (\d+) zero-shot (?P<scores>.*)$")


def rank_log(run_dir: Path, rank: int) -> Path:
    """Where rank `rank` of a supervised launch writes all it prints."""
    return run_dir / RANK_LOGS / f"rank-{rank}.log"


def take_console(run_dir: Path, epochs: int, environ: dict[str, str] | os._Environ) -> None:
    """Send this rank's output to its log file and, in rank 0,
    show training on the console bmclip handed over (see the module docstring)."""
    console_path = environ.get(CONSOLE_VARIABLE)
    if not console_path:
        return
    rank = int(environ.get("RANK", "0"))
    log = rank_log(run_dir, rank)
    log.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (1, 2):
        os.dup2(descriptor, stream)
    os.close(descriptor)
    header = RANK_LOG_HEADER.format(rank=rank, node=environ.get("GROUP_RANK", "0"), host=socket.gethostname(), pid=os.getpid())
    os.write(1, f"{header}\n".encode())
    if rank != 0:
        return
    console = open(console_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the life of the rank
    handler: logging.Handler
    if environ.get(VERBOSE_VARIABLE):
        handler = logging.StreamHandler(console)
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(message)s", datefmt="%Y-%m-%d,%H:%M:%S"))
    else:
        handler = TrainingProgress(console, epochs, terminal=bool(environ.get(CONSOLE_TTY_VARIABLE)))
    logging.getLogger().addHandler(handler)


@dataclass
class EpochState:
    """What rank 0 knows of the epoch under way."""

    epoch: int
    started: float
    samples_per_epoch: int = 0
    seen: int = 0
    loss: float | None = None
    rate: float | None = None
    metrics: str = ""
    ended: float | None = None


class TrainingProgress(logging.Handler):
    """A logging handler that turns open_clip's Start/Train/Eval Epoch records into a person's view of training."""

    def __init__(self, stream: IO[str], epochs: int, terminal: bool) -> None:
        super().__init__(level=logging.INFO)
        self.stream, self.epochs, self.terminal = stream, epochs, terminal
        self.current: EpochState | None = None
        self.last_plain = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        """Follow training through one log record (every other record stays in the rank's log file only)."""
        message = record.getMessage()
        if getattr(record, TO_CONSOLE, False):
            self._show_line(message)
        elif start := START_EPOCH.match(message):
            self._finish_epoch()
            self.current = EpochState(int(start.group(1)), time.monotonic())
        elif (line := TRAIN_LINE.search(message)) and self.current is not None:
            self.current.seen, self.current.samples_per_epoch = int(line["seen"]), int(line["total"])
            self.current.loss, self.current.rate = float(line["loss"]), float(line["rate"])
            if int(line["percent"]) >= 100:
                self.current.ended = time.monotonic()
            self._show_progress()
        elif (evaluation := EVAL_LINE.match(message)) and self.current is not None:
            pairs = dict(item.split(": ", 1) for item in evaluation.group(2).split("\t") if ": " in item)
            self.current.metrics = ", ".join(f"{name} {pairs[name]}" for name in SHOWN_METRICS if name in pairs)
        elif (zero_shot := ZERO_SHOT_LINE.match(message)) and self.current is not None:
            self.current.metrics = ", ".join(filter(None, [self.current.metrics, f"zero-shot {zero_shot['scores']}"]))

    def close(self) -> None:
        """Print the last epoch's line (its validation, if any, has been logged by now)."""
        self._finish_epoch()
        super().close()

    def _show_progress(self) -> None:
        state = self.current
        assert state is not None
        if self.terminal:
            self._bar().update(self.task, completed=state.seen, total=state.samples_per_epoch, loss=f"{state.loss:.4f}",
                               rate=f"{state.rate:.0f}")
        elif state.ended is None and time.monotonic() - self.last_plain >= PLAIN_INTERVAL_S:
            self.last_plain = time.monotonic()
            self.stream.write(f"bmclip: epoch {state.epoch + 1}/{self.epochs}  {state.seen}/{state.samples_per_epoch} samples  "
                              f"loss {state.loss:.4f}  {state.rate:.0f} samples/s\n")

    def _bar(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            console = Console(file=self.stream, force_terminal=True, width=int(os.environ.get("COLUMNS", "100")))
            self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"), TimeRemainingColumn(),
                                console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=None, epoch="", loss="-", rate="-")
        assert self.current is not None
        self.bar.update(self.task, epoch=f"{self.current.epoch + 1}/{self.epochs}")
        return self.bar

    def _finish_epoch(self) -> None:
        state, self.current = self.current, None
        if state is None or state.loss is None:
            return
        seconds = (state.ended or time.monotonic()) - state.started
        metrics = f"  {state.metrics}" if state.metrics else ""
        self._show_line(f"bmclip: epoch {state.epoch + 1}/{self.epochs}  loss {state.loss:.4f}  {state.rate:.0f} samples/s  "
                        f"{seconds:.1f} s{metrics}")
        if self.bar is not None and state.epoch + 1 >= self.epochs:
            self.bar.stop()
        self.last_plain = time.monotonic()

    def _show_line(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            self.stream.write(line + "\n")
