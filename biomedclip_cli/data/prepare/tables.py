"""Metadata tables that name images and captions: CSV/TSV, JSON Lines and Parquet, read as a stream of records.

Each reader knows its columns before the first record is read, so a wrong column name is reported
before anything is written, and none holds more than one batch of records in memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biomedclip_cli.data.csv_inspection import sniff_separator
from biomedclip_cli.data.prepare.rows import UNREADABLE_RECORD, Reason
from biomedclip_cli.problems import ProblemFound, error

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")
PARQUET_BATCH_ROWS = 4_096
Record = tuple[int, dict[str, Any] | Reason]


def _unreadable(path: Path, why: str, fix: str = "check the file") -> ProblemFound:
    return ProblemFound(error(str(path), why, fix))


@dataclass(frozen=True)
class CsvTable:
    """A CSV or TSV file with a header line; the separator is TAB for .tsv and sniffed from the header otherwise."""

    path: Path
    separator: str
    columns: list[str]

    @classmethod
    def open(cls, path: Path) -> CsvTable:
        """Read the header (and nothing else) of a CSV/TSV file."""
        csv.field_size_limit(sys.maxsize)
        try:
            with path.open(newline="", encoding="utf-8-sig") as stream:
                header = stream.readline()
        except UnicodeDecodeError:
            raise _unreadable(path, "is not UTF-8 text", "save it as UTF-8 CSV") from None
        if not header.strip():
            raise _unreadable(path, "is empty", "write a header line naming the image and caption columns")
        separator = "\t" if path.suffix.lower() == ".tsv" else sniff_separator(header)
        columns = next(csv.reader([header], delimiter=separator))
        return cls(path, separator, [column.strip() for column in columns])

    def count(self) -> int:
        """Number of data records (a quoted caption may span several lines)."""
        with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as stream:
            return max(sum(1 for _ in csv.reader(stream, delimiter=self.separator)) - 1, 0)

    def records(self, wanted: list[str]) -> Iterator[Record]:
        """(record number, record) for each data row; 1 is the first row under the header."""
        number = 0
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as stream:
                reader = csv.reader(stream, delimiter=self.separator)
                next(reader, None)
                for number, values in enumerate(reader, start=1):
                    if any(value.strip() for value in values):
                        yield number, dict(zip(self.columns, values, strict=False))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _unreadable(self.path, f"cannot be read after row {number}: {exc}", "fix or re-export the file") from None


@dataclass(frozen=True)
class JsonLinesTable:
    """A JSON Lines file: one JSON object per line; its columns are the keys of the first object."""

    path: Path
    columns: list[str]

    @classmethod
    def open(cls, path: Path) -> JsonLinesTable:
        """Read the first object of a JSON Lines file to learn its keys."""
        try:
            with path.open(encoding="utf-8") as stream:
                first = next((line for line in stream if line.strip()), "")
            record = json.loads(first) if first else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise _unreadable(path, f"is not JSON Lines ({exc})", "write one JSON object per line") from None
        if not isinstance(record, dict):
            raise _unreadable(path, "does not start with a JSON object", "write one JSON object per line")
        return cls(path, list(record))

    def count(self) -> int:
        """Number of non-blank lines."""
        with self.path.open(encoding="utf-8", errors="replace") as stream:
            return sum(1 for line in stream if line.strip())

    def records(self, wanted: list[str]) -> Iterator[Record]:
        """(record number, object), or the reason a line is not a JSON object."""
        with self.path.open(encoding="utf-8", errors="replace") as stream:
            number = 0
            for line in stream:
                if not line.strip():
                    continue
                number += 1
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    yield number, Reason(UNREADABLE_RECORD, f"not JSON ({exc})")
                    continue
                yield number, record if isinstance(record, dict) else Reason(UNREADABLE_RECORD, "not a JSON object")


@dataclass(frozen=True)
class ParquetTable:
    """A Parquet file, read in batches of the wanted columns only (needs pyarrow)."""

    path: Path
    columns: list[str]
    rows: int

    @classmethod
    def open(cls, path: Path) -> ParquetTable:
        """Read the schema and row count of a Parquet file."""
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise _unreadable(path, "reading Parquet needs pyarrow, which is not installed", "pip install pyarrow") from None
        try:
            metadata = parquet.ParquetFile(path).metadata
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise _unreadable(path, f"is not a Parquet file ({exc})", "check the file") from None
        return cls(path, list(metadata.schema.to_arrow_schema().names), metadata.num_rows)

    def count(self) -> int:
        """Number of rows, from the file's footer."""
        return self.rows

    def records(self, wanted: list[str]) -> Iterator[Record]:
        """(record number, record) for each row, holding one batch of the wanted columns at a time."""
        import pyarrow.parquet as parquet

        number = 0
        for batch in parquet.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            for record in batch.to_pylist():
                number += 1
                yield number, record


Table = CsvTable | JsonLinesTable | ParquetTable


def open_table(path: Path) -> Table:
    """The reader for a metadata file, chosen by its suffix (raises ProblemFound if it cannot be read)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetTable.open(path)
    if suffix in (".jsonl", ".ndjson"):
        return JsonLinesTable.open(path)
    return CsvTable.open(path)
