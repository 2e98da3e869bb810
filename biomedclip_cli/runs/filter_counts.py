"""How many samples a run's --where/--classes kept and dropped: <run>/filter-counts/, one small file per process that reads data.

Each rank and each of its data-loading workers, on every node, counts the samples it tested and keeps
its two numbers current in a file of its own, rewritten in place at every sample (one `pwrite` of a
fixed-width line: a system call, no flush to disk, so the count is exact even for a worker killed
with the rank). The run's totals are the sum over the files, every launch of the run included; the
training summary, `bmclip runs` and `bmclip report` read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FILTER_COUNTS = "filter-counts"
LINE_WIDTH = 20  # digits per number: a fixed-width line is rewritten in place, never longer or shorter


@dataclass(frozen=True)
class FilterTotals:
    """Samples the filter kept and dropped."""

    kept: int
    dropped: int

    @property
    def tested(self) -> int:
        """Samples the filter looked at."""
        return self.kept + self.dropped

    def described(self) -> str:
        """One line for summaries: 'kept 1,234 of 5,000 samples tested (24.7%), dropped 3,766'."""
        share = f" ({100 * self.kept / self.tested:.1f}%)" if self.tested else ""
        return f"kept {self.kept:,} of {self.tested:,} samples tested{share}, dropped {self.dropped:,}"


class FilterCounter:
    """This process's counts, written to <folder>/<writer>-pid<PID>.txt (no file without a folder: bench-data counts in memory).

    A copy made by fork (a data-loading worker) starts from zero in a file of its own, at its first sample.
    """

    def __init__(self, folder: Path | None, writer: str) -> None:
        self.folder, self.writer = folder, writer
        self.kept = self.dropped = 0
        self._pid: int | None = None
        self._fd: int | None = None

    def add(self, kept: bool) -> None:
        """Count one sample tested, kept or dropped."""
        if self._pid != os.getpid():
            self._start_in_this_process()
        if kept:
            self.kept += 1
        else:
            self.dropped += 1
        if self._fd is not None:
            os.pwrite(self._fd, f"{self.kept:{LINE_WIDTH}d} {self.dropped:{LINE_WIDTH}d}\n".encode(), 0)

    def _start_in_this_process(self) -> None:
        self._pid = os.getpid()
        self.kept = self.dropped = 0
        self._fd = None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.folder / f"{self.writer}-pid{self._pid}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def filter_totals(run_dir: Path) -> FilterTotals | None:
    """The run's totals so far, summed over every process's file; None for a run that filtered nothing (no folder)."""
    folder = run_dir / FILTER_COUNTS
    if not folder.is_dir():
        return None
    kept = dropped = 0
    for path in sorted(folder.glob("*.txt")):
        try:
            numbers = path.read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            continue
        if len(numbers) == 2 and all(number.isdigit() for number in numbers):
            kept, dropped = kept + int(numbers[0]), dropped + int(numbers[1])
    return FilterTotals(kept, dropped)
