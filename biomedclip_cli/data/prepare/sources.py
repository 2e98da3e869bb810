"""The inputs prepare-csv reads, each as a stream of rows: a folder of images with sidecar captions,
a metadata table beside its images, or webdataset shards (BIOMEDICA's jpg/txt/json layout).

Reading a source never decodes an image: folders are listed, tables read, files stat'ed; only shards
carry image bytes, because that is where their images live.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from biomedclip_cli.data.locations import is_remote
from biomedclip_cli.data.prepare.rows import (
    MISSING_FILE,
    NO_CAPTION,
    NO_IMAGE,
    UNREADABLE_CAPTION,
    UNREADABLE_FOLDER,
    UNREADABLE_RECORD,
    UNREADABLE_SHARD,
    Reason,
    Row,
    caption_problem,
    cell_text,
    filtered_row,
    rejected_row,
)
from biomedclip_cli.data.prepare.tables import TABLE_SUFFIXES, CsvTable, Table, open_table
from biomedclip_cli.data.shard_inspection import check_shards, inspect_shards
from biomedclip_cli.data.shard_writer import SHARD_IMAGE_KEYS
from biomedclip_cli.hub.biomedica import expand_shortcuts
from biomedclip_cli.hub.paths import is_hub_url
from biomedclip_cli.problems import Problem, ProblemFound, error

if TYPE_CHECKING:
    from biomedclip_cli.sample_filter import SampleFilter

IMAGE_SUFFIXES = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp", ".tif": "tif", ".tiff": "tif",
                  ".bmp": "bmp", ".gif": "gif", ".dcm": "dcm", ".dicom": "dcm"}
CAPTION_SUFFIX = ".txt"
WHERE_LOOKAHEAD = 32  # samples of a shard source whose json --where's field names are checked against
KEY_COLUMN = "__key__"
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ReadSettings:
    """How to find captions and extra columns in the sources; `captions_from_tags`: a row without a caption may get one from
    its DICOM tags (--caption-template), so it is not rejected while reading; `where`: the rows to keep (--where, --classes),
    tested against a shard sample's json or a table's record, None to keep all."""

    image_column: str = "filepath"
    caption_column: str = "caption"
    caption_field: str | None = None
    extra_columns: tuple[str, ...] = ()
    captions_from_tags: bool = False
    where: SampleFilter | None = None


class Source(Protocol):
    """One input: its name, the columns it offers for extras (None if it has none), its rows."""

    @property
    def name(self) -> str:
        """The SOURCE argument as the user gave it."""

    def columns(self) -> list[str] | None:
        """Columns (or JSON fields) the source can fill extra columns from; None for sidecar folders."""

    def count(self) -> int | None:
        """Number of rows, found cheaply, or None if only reading them all would tell."""

    def rows(self) -> Iterator[Row]:
        """Every input row, rejected ones included, in a stable order."""


def safe_name(text: str) -> str:
    """Text usable as a file name and a webdataset key: runs of other characters become '_'."""
    return UNSAFE_NAME.sub("_", text).strip("_") or "_"


def _read_caption(path: Path) -> str | Reason:
    try:
        return path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError:
        return Reason(UNREADABLE_CAPTION, f"{path.name} is not UTF-8 text")
    except OSError as exc:
        return Reason(UNREADABLE_CAPTION, exc.strerror or str(exc))


def _with_caption(row: Row, caption: str | Reason, settings: ReadSettings) -> Row:
    """The row with its caption; without one, rejected, or waiting for its DICOM tags (`captions_from_tags`)."""
    problem = caption if isinstance(caption, Reason) else caption_problem(caption)
    if problem is None and isinstance(caption, str):
        return replace(row, caption=caption)
    if settings.captions_from_tags:
        return replace(row, missing_caption=problem)
    return Row(source=row.source, rejected=problem)


@dataclass(frozen=True)
class SidecarFolder:
    """A folder (searched recursively) of images with captions beside them: x.jpg with x.txt.

    An image without its .txt, a .txt without an image, and a folder that cannot be listed are rows
    that get rejected. Hidden files and folders (names starting with '.') are not looked at, and
    links to folders are not followed.
    """

    name: str
    root: Path
    settings: ReadSettings = ReadSettings()

    def _pairs(self) -> Iterator[tuple[str, str | None, str | None] | OSError]:
        """(folder, image, caption file) for each image and each lone caption; the error of a folder that cannot be listed."""
        unlisted: list[OSError] = []
        for directory, subfolders, files in os.walk(self.root, onerror=unlisted.append):
            yield from unlisted
            unlisted.clear()
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            by_stem: dict[str, list[str]] = {}
            for file in files:
                stem, suffix = os.path.splitext(file)
                if not file.startswith(".") and (suffix.lower() in IMAGE_SUFFIXES or suffix.lower() == CAPTION_SUFFIX):
                    by_stem.setdefault(stem, []).append(file)
            for stem in sorted(by_stem):
                names = sorted(by_stem[stem])
                captions = [file for file in names if file.lower().endswith(CAPTION_SUFFIX)]
                images = [file for file in names if file not in captions]
                for image in images:
                    yield directory, image, captions[0] if captions else None
                if not images:
                    yield directory, None, captions[0]
        yield from unlisted

    def columns(self) -> list[str] | None:
        """A sidecar folder has no columns to take extras from."""
        return None

    def count(self) -> int:
        """Images plus captions without an image, from a listing of the folder."""
        return sum(1 for _ in self._pairs())

    def rows(self) -> Iterator[Row]:
        """A row per image (caption read from its .txt) and a rejected row per lone .txt."""
        for entry in self._pairs():
            if isinstance(entry, OSError):
                yield rejected_row(str(entry.filename), UNREADABLE_FOLDER, entry.strerror or str(entry))
                continue
            directory, image, caption_file = entry
            if image is None:
                yield rejected_row(os.path.join(directory, caption_file or ""), NO_IMAGE, "caption file without an image beside it")
                continue
            path = Path(directory, image)
            stem, suffix = os.path.splitext(image)
            row = Row(str(path), image_path=path, image_ext=IMAGE_SUFFIXES[suffix.lower()], name=stem)
            missing = Reason(NO_CAPTION, f"no {stem}{CAPTION_SUFFIX} beside it")
            yield _with_caption(row, _read_caption(Path(directory, caption_file)) if caption_file else missing, self.settings)


@dataclass(frozen=True)
class MetadataTable:
    """A metadata file (CSV/TSV, JSON Lines, Parquet) naming each image (relative to the file) and its caption."""

    name: str
    table: Table
    settings: ReadSettings

    def columns(self) -> list[str]:
        """The table's column names."""
        return list(self.table.columns)

    def count(self) -> int:
        """Number of records in the table."""
        return self.table.count()

    def where_columns(self) -> list[str]:
        """The columns --where reads (the first part of each dotted field), in a stable order."""
        where = self.settings.where
        return sorted({path.split(".")[0] for path in where.fields}) if where is not None else []

    def rows(self) -> Iterator[Row]:
        """A row per record; image paths are resolved against the table's folder and checked to exist."""
        settings, base, where = self.settings, self.table.path.parent, self.settings.where
        extras = [column for column in settings.extra_columns if column in self.table.columns]
        filtered_on = [column for column in self.where_columns() if column in self.table.columns]
        wanted = list(dict.fromkeys([settings.image_column, settings.caption_column, *extras, *filtered_on]))
        empty_is_missing = isinstance(self.table, CsvTable)
        for number, record in self.table.records(wanted):
            source = f"{self.table.path} row {number}"
            if isinstance(record, Reason):
                yield Row(source=source, rejected=record)
                continue
            if where is not None and not where.matches(_filter_view(record, empty_is_missing)):
                yield filtered_row(source)
                continue
            image = cell_text(record.get(settings.image_column)).strip()
            if not image:
                yield rejected_row(source, NO_IMAGE, f"empty '{settings.image_column}'")
                continue
            path = Path(image) if os.path.isabs(image) else base / image
            if not path.is_file():
                yield rejected_row(source, MISSING_FILE, image)
                continue
            values = {column: cell_text(record.get(column)) for column in extras}
            row = Row(source, image_path=path, image_ext=IMAGE_SUFFIXES.get(path.suffix.lower(), ""), name=path.stem,
                      extras=values, metadata=dict(values))
            yield _with_caption(row, cell_text(record.get(settings.caption_column)).strip(), settings)


def _filter_view(record: dict[str, Any], empty_is_missing: bool) -> dict[str, Any]:
    """A table record as --where sees it: a CSV's empty cells are missing (as they would be in JSON), other values as stored."""
    return {column: value for column, value in record.items() if value != ""} if empty_is_missing else record


def _tar_samples(shard: str) -> Iterator[dict[str, Any]]:
    """The samples of one tar file (local, or hf:// streamed from the hub), grouped by key as webdataset groups them for training."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    from biomedclip_cli.hub.streaming import open_shard

    with open_shard(shard) as stream:
        yield from group_by_keys(tar_file_expander([{"url": shard, "stream": stream}]))


def _json_metadata(sample: dict[str, Any]) -> dict[str, Any] | Reason:
    if "json" not in sample:
        return {}
    try:
        metadata = json.loads(sample["json"])
    except ValueError as exc:
        return Reason(UNREADABLE_RECORD, f"json is not valid JSON ({exc})")
    return metadata if isinstance(metadata, dict) else Reason(UNREADABLE_RECORD, "json is not an object")


@dataclass(frozen=True)
class ShardSource:
    """Local webdataset shards (a brace pattern) in BIOMEDICA's layout: jpg (the figure), txt (caption), json.

    `folder` names where the images of this source go when they are extracted for a CSV;
    `num_samples` is what sizes.json (or __len__, or the hub) said when the shards were checked.
    """

    name: str
    shards: list[str]
    folder: str
    settings: ReadSettings
    num_samples: int | None = None

    def columns(self) -> list[str]:
        """The JSON fields of the first sample, and __key__ (the sample key)."""
        try:
            first = next(_tar_samples(self.shards[0]), {})
        except (tarfile.TarError, OSError, ValueError):
            return [KEY_COLUMN]
        metadata = _json_metadata(first)
        return [*(metadata if isinstance(metadata, dict) else {}), KEY_COLUMN]

    def first_metadata(self, limit: int = WHERE_LOOKAHEAD) -> list[dict[str, Any]]:
        """The json objects of the first `limit` samples of the first shard (what --where's field names are checked against).

        A sample without json counts as an empty object; json that does not parse is left out; a shard that cannot be read
        gives what was read before it failed (its error comes again, as a rejected row, when the rows are read).
        """
        found: list[dict[str, Any]] = []
        try:
            for sample in _tar_samples(self.shards[0]):
                metadata = _json_metadata(sample)
                if isinstance(metadata, dict):
                    found.append(metadata)
                if len(found) >= limit:
                    break
        except (tarfile.TarError, OSError, ValueError, EOFError):
            pass
        return found

    def count(self) -> int | None:
        """Samples according to sizes.json (or __len__) beside the shards, if present (found when open_source checked them)."""
        return self.num_samples

    def _row(self, shard: str, sample: dict[str, Any], seen: set[str]) -> Row:
        key, settings = sample["__key__"], self.settings
        source = f"{shard}:{key}"
        name = f"{self.folder}/{Path(shard).stem}/{safe_name(key)}"
        if name in seen:
            return rejected_row(source, UNREADABLE_RECORD, "a second sample with this key in the shard")
        seen.add(name)
        metadata = _json_metadata(sample)
        if isinstance(metadata, Reason):
            return Row(source=source, rejected=metadata)
        if settings.where is not None and not settings.where.matches(metadata):
            return filtered_row(source)
        image_key = next((ext for ext in SHARD_IMAGE_KEYS if ext in sample), None)
        if image_key is None:
            return rejected_row(source, NO_IMAGE, f"sample has none of {', '.join(SHARD_IMAGE_KEYS)}")
        caption: str | Reason
        if settings.caption_field is not None:
            field = settings.caption_field
            caption = cell_text(metadata[field]).strip() if field in metadata else Reason(NO_CAPTION, f"json has no field '{field}'")
        elif "txt" not in sample:
            caption = Reason(NO_CAPTION, "sample has no txt")
        else:
            try:
                caption = sample["txt"].decode("utf-8").strip()
            except UnicodeDecodeError:
                caption = Reason(UNREADABLE_CAPTION, "txt is not UTF-8 text")
        extras = {column: key if column == KEY_COLUMN else cell_text(metadata.get(column)) for column in settings.extra_columns}
        row = Row(source, image_bytes=sample[image_key], image_ext="jpg" if image_key == "jpeg" else image_key, name=name,
                  extras=extras, metadata=metadata)
        return _with_caption(row, caption, settings)

    def rows(self) -> Iterator[Row]:
        """A row per sample, shard after shard; a shard that cannot be read to its end adds one rejected row."""
        for shard in self.shards:
            seen: set[str] = set()
            try:
                for sample in _tar_samples(shard):
                    yield self._row(shard, sample, seen)
            except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
                yield rejected_row(shard, UNREADABLE_SHARD, f"{exc.args[0] if exc.args else exc} (after {len(seen)} samples)")


def _is_shard_pattern(spec: str) -> bool:
    return spec.lower().endswith(".tar") or ("{" in spec and ".tar" in spec.lower())


def open_source(spec: str, number: int, settings: ReadSettings) -> Source:
    """The source a SOURCE argument names: a folder, a metadata file, or shards, local or on the hub (hf://,
    biomedica:NAME); raises ProblemFound if unusable."""
    expanded = expand_shortcuts(spec, spec)
    if isinstance(expanded, Problem):
        raise ProblemFound(expanded)
    if is_remote(expanded) and not is_hub_url(expanded):
        raise ProblemFound(error(spec, "is not on this machine (prepare-csv reads local files and hf:// shards)",
                                 "download the files first and pass the local path"))
    if _is_shard_pattern(expanded):
        found = inspect_shards(expanded, option=spec)
        problems = found.problems or check_shards(found, spec, spec)
        if problems:
            raise ProblemFound(problems[0])
        shards = [shard for group in found.by_source for shard in group]
        return ShardSource(expanded, shards, f"{number:02d}-{safe_name(Path(shards[0]).parent.name)}", settings, found.num_samples)
    path = Path(spec)
    if not path.exists():
        raise ProblemFound(error(spec, "does not exist", "check the path"))
    if path.is_dir():
        return SidecarFolder(spec, path.absolute(), settings)
    if path.suffix.lower() in TABLE_SUFFIXES:
        return MetadataTable(spec, open_table(path.absolute()), settings)
    raise ProblemFound(error(spec, "is not a folder, a metadata file or shards",
                             f"pass a folder of images with .txt captions, a {'/'.join(TABLE_SUFFIXES)} file, or shards ending in .tar"))
