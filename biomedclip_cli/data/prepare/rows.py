"""One input row of prepare-csv (an image, its caption, extra columns) and why a row may be rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MISSING_FILE = "missing file"
NO_CAPTION = "no caption"
EMPTY_CAPTION = "empty caption"
NO_IMAGE = "no image"
UNREADABLE_CAPTION = "unreadable caption"
UNREADABLE_RECORD = "unreadable record"
UNREADABLE_SHARD = "unreadable shard"
UNREADABLE_FOLDER = "unreadable folder"
UNREADABLE_IMAGE = "unreadable image"
TRUNCATED_IMAGE = "truncated image"
TOO_SMALL = "image too small"
DUPLICATE = "duplicate image"
IMAGE_TOO_LARGE = "image too large"
DICOM_DECODER_MISSING = "DICOM decoder missing"

# pandas.read_csv turns these exact values into NaN (pandas._libs.parsers.STR_NA_VALUES), even when quoted,
# and open_clip's CsvDataset then trains on the caption "nan".
PANDAS_NA_VALUES = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


@dataclass(frozen=True)
class Reason:
    """Why a row was not written: a kind (counted in the summary) and the detail that helps find it."""

    kind: str
    detail: str = ""

    def text(self) -> str:
        """The reason as written in the rejects file."""
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass(frozen=True)
class Row:
    """One input row: where it came from, its image (a file or bytes from a shard), caption and extra columns.

    `rejected` is set when reading the row already showed it cannot be written (e.g. missing file).
    `missing_caption` is why the row has no caption yet, when its caption may still come from its
    DICOM tags (--caption-template); the row is rejected with it if none comes.
    `filtered` is set when --where does not keep the row: it is neither written nor rejected, only counted.
    """

    source: str
    caption: str = ""
    image_path: Path | None = None
    image_bytes: bytes | None = None
    image_ext: str = "jpg"
    name: str = ""
    extras: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    rejected: Reason | None = None
    missing_caption: Reason | None = None
    filtered: bool = False


def rejected_row(source: str, kind: str, detail: str = "") -> Row:
    """A row that reading already rejected."""
    return Row(source=source, rejected=Reason(kind, detail))


def filtered_row(source: str) -> Row:
    """A row that --where does not keep."""
    return Row(source=source, filtered=True)


def caption_problem(caption: str) -> Reason | None:
    """Why a caption cannot be trained on: empty, or a value pandas reads back as missing ('NA', 'null', ...)."""
    if not caption:
        return Reason(EMPTY_CAPTION)
    if caption in PANDAS_NA_VALUES:
        return Reason(EMPTY_CAPTION, f"'{caption}' reads as missing in pandas")
    return None


def cell_text(value: Any) -> str:
    """A metadata value as CSV text: lists joined with '; ', mappings as JSON, missing values empty, the rest as str."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(cell_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value != value:
        return ""
    return str(value)
