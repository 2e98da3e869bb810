"""CSV files written the way open_clip reads them, under a temporary name until complete."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from biomedclip_cli.partial_files import partial_path


class AtomicCsvWriter:
    """A comma-separated UTF-8 CSV written to `<name>.partial` and renamed over `path` only on a clean exit.

    Fields with commas, quotes or newlines are quoted (csv.QUOTE_MINIMAL), which pandas.read_csv, and so
    open_clip's CsvDataset, reads back unchanged. An exception (Ctrl-C included) deletes the partial file,
    so a finished-looking file is always a complete one.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._partial = partial_path(path)
        self._stream = self._partial.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._stream, lineterminator="\n")
        self._writer.writerow(header)

    def write(self, values: Sequence[str]) -> None:
        """Append one row."""
        self._writer.writerow(values)

    def __enter__(self) -> AtomicCsvWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stream.close()
        if kind is None:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)
