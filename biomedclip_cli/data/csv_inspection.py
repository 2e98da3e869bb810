"""A CSV's header and first rows as open_clip will read them: separator, columns, image paths.

Only the header and a few rows are read, so a 100k-row file is checked in milliseconds.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

from biomedclip_cli.data.locations import is_remote
from biomedclip_cli.problems import Problem, error

SEPARATORS = (",", "\t", ";", "|")
SEPARATOR_NAMES = {",": "','", "\t": "TAB", ";": "';'", "|": "'|'"}
HEAD_BYTES = 1 << 16
ROWS_TO_CHECK = 5


@dataclass
class CsvHead:
    """What the first lines of a CSV file say: separator, columns, and up to ROWS_TO_CHECK rows."""

    separator: str
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)


def _read_head_text(path: Path, option: str) -> str | Problem:
    if not path.exists():
        return error(option, f"file '{path}' does not exist", "check the path", local_only=True)
    if path.is_dir():
        return error(option, f"'{path}' is a folder, not a CSV file", "pass the CSV file itself")
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    if b"\x00" in head:
        return error(option, f"'{path}' is not a text file", "pass a CSV with a header line (e.g. made by bmclip prepare-csv)")
    text = head.decode("utf-8-sig", errors="replace")
    if len(head) == HEAD_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    return text


def sniff_separator(header_line: str) -> str:
    """The separator that splits the header into the most columns (',' on a tie or a single column)."""
    counts = {sep: len(next(csv.reader([header_line], delimiter=sep))) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: (counts[sep], sep == ","))
    return best


def read_csv_head(path: Path, separator: str | None, option: str) -> CsvHead | Problem:
    """The separator (given or sniffed), columns and first rows of a CSV, or the problem that stops reading it."""
    text = _read_head_text(path, option)
    if isinstance(text, Problem):
        return text
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return error(option, f"'{path}' is empty", "write a header line and at least one row")
    used = separator if separator is not None else sniff_separator(lines[0])
    reader = csv.DictReader(io.StringIO(text), delimiter=used)
    columns = [c for c in (reader.fieldnames or [])]
    rows: list[dict[str, str]] = []
    for row in reader:
        if any((value or "").strip() for value in row.values() if isinstance(value, str)):
            rows.append(row)
        if len(rows) >= ROWS_TO_CHECK:
            break
    if not rows:
        return error(option, f"'{path}' has a header but no data rows", "add rows, or check that the right file is named")
    return CsvHead(used, columns, rows)


def check_csv_columns(head: CsvHead, path: Path, wanted: dict[str, str]) -> list[Problem]:
    """Problems with the columns named by --csv-img-key/--csv-caption-key, with the fix that would work."""
    problems = []
    for option, column in wanted.items():
        if column in head.columns:
            continue
        header = ",".join(head.columns) if head.separator == "," else head.separator.join(head.columns)
        resplit = {sep: header.split(sep) for sep in SEPARATORS if sep != head.separator and len(header.split(sep)) > 1}
        if len(head.columns) == 1 and resplit:
            sep = next(iter(resplit))
            problems.append(error("--csv-separator", f"'{path}' does not split into columns with {SEPARATOR_NAMES[head.separator]}",
                                  f"it splits with {SEPARATOR_NAMES[sep]}: pass --csv-separator {sep!r}"))
            return problems
        close = difflib.get_close_matches(column, head.columns, n=1, cutoff=0.0)
        hint = f"pass {option} {close[0]}" if close else "name a column the file has"
        problems.append(error(option, f"'{path}' has no column '{column}' (columns: {', '.join(head.columns)})", hint))
    return problems


def check_image_paths(head: CsvHead, path: Path, image_column: str) -> list[Problem]:
    """Problems with the image paths of the first rows (open_clip opens them relative to the current folder)."""
    for number, row in enumerate(head.rows, start=1):
        image = (row.get(image_column) or "").strip()
        if not image:
            return [error(str(path), f"row {number} has an empty '{image_column}'", "fill in the image path or drop the row")]
        if not is_remote(image) and not Path(image).is_file():
            return [error(str(path), f"image '{image}' in row {number} does not exist (paths are read relative to {Path.cwd()})",
                          "fix the paths, or run bmclip from the folder they are relative to", local_only=True)]
    return []
