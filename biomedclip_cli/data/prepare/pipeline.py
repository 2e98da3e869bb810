"""prepare-csv's pipeline: sources → --where → image checks → split → train/val CSV and shards, every other row rejected.

Rows stream through one at a time (image checks in bounded batches), so memory stays flat in the
number of rows. Every row read is either written, filtered out by --where (counted, never decoded),
or listed in the rejects file with its reason.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

from biomedclip_cli.data.csv_writer import AtomicCsvWriter
from biomedclip_cli.data.prepare.destinations import CAPTION_COLUMN, IMAGE_COLUMN, SHARD_FILE, Destination, remove_stale_shards
from biomedclip_cli.data.prepare.dicom_captions import CaptionTemplate
from biomedclip_cli.data.prepare.image_checks import CheckSettings, Deduplicator, ImageVerdict, inspect_rows
from biomedclip_cli.data.prepare.rows import EMPTY_CAPTION, Reason, Row
from biomedclip_cli.data.prepare.sources import MetadataTable, ReadSettings, ShardSource, SidecarFolder, Source, open_source
from biomedclip_cli.data.shard_writer import SIZES_FILE
from biomedclip_cli.problems import Problem, ProblemFound, Severity, error, warning
from biomedclip_cli.sample_filter import OPTION as WHERE_OPTION
from biomedclip_cli.sample_filter import closest, unknown_field_warnings

REJECTS_COLUMNS = ("source", "reason")
VAL_SHARDS_FOLDER = "val"
PROGRESS_EVERY = 256


@dataclass(frozen=True)
class Outputs:
    """Every path prepare-csv writes (None: not written)."""

    csv: Path | None
    val_csv: Path | None
    rejects: Path
    shards: Path | None
    val_shards: Path | None
    extract_to: Path | None

    def files(self) -> list[tuple[str, Path]]:
        """(option, path) of each output file or folder that must not exist yet."""
        named = [("--out", self.csv), ("--val-out", self.val_csv), ("--rejects", self.rejects),
                 ("--shards", self.shards), ("--extract-to", self.extract_to)]
        return [(option, path) for option, path in named if path is not None]


@dataclass(frozen=True)
class PrepareRequest:
    """Everything prepare-csv was asked to do."""

    sources: tuple[str, ...]
    outputs: Outputs
    read: ReadSettings = ReadSettings()
    checks: CheckSettings = CheckSettings()
    val_fraction: float = 0.0
    seed: int = 0
    group_by: str | None = None
    workers: int = 1
    shard_size: int = 10_000
    overwrite: bool = False


@dataclass
class PrepareResult:
    """What happened to the rows read: how many went to train and val, were filtered out by --where, and the rejected ones by
    reason; of the images written, how many of each kind (8-bit, high bit depth, DICOM), stored rotated, over --max-pixels,
    converted for shards, and downscaled by --resize."""

    read: int = 0
    train: int = 0
    val: int = 0
    filtered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    train_shards: int = 0
    val_shards: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rotated: int = 0
    reduced: int = 0
    converted: int = 0
    resized: int = 0

    @property
    def written(self) -> int:
        """Rows written (train + val)."""
        return self.train + self.val

    @property
    def rejected_total(self) -> int:
        """Rows rejected, all reasons."""
        return sum(self.rejected.values())


def resolve_outputs(out: Path | None, val_out: Path | None, rejects: Path | None, shards: Path | None,
                    extract_to: Path | None, val_fraction: float, sources: list[Source]) -> Outputs:
    """The output paths with their defaults filled in.

    Defaults: val.csv beside --out; the rejects file `<out stem>.rejects.csv` beside --out (or beside
    the shards folder); images extracted from shards (for a CSV) to `<out stem>-images/` beside --out.
    """
    if out is None and shards is None:
        raise ProblemFound(error("--out", "nothing to write", "pass --out train.csv, --shards DIR, or both"))
    if val_out is not None and not val_fraction:
        raise ProblemFound(error("--val-out", "given without --val-fraction", "pass --val-fraction, e.g. 0.05"))
    anchor = (out or shards or Path("data")).absolute()
    if val_fraction and out is not None and val_out is None:
        val_out = anchor.with_name("val.csv")
    if rejects is None:
        rejects = anchor.with_name(f"{anchor.stem}.rejects.csv")
    needs_extraction = out is not None and any(isinstance(source, ShardSource) for source in sources)
    if needs_extraction and extract_to is None:
        extract_to = anchor.with_name(f"{anchor.stem}-images")
    return Outputs(
        csv=out.absolute() if out else None,
        val_csv=val_out.absolute() if val_out else None,
        rejects=rejects.absolute(),
        shards=shards.absolute() if shards else None,
        val_shards=shards.absolute() / VAL_SHARDS_FOLDER if shards and val_fraction else None,
        extract_to=extract_to.absolute() if needs_extraction and extract_to else None,
    )


def _closest(name: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.0)
    return close[0] if close else ""


def _column_problem(option: str, name: str, where: str, columns: list[str]) -> Problem:
    suggestion = _closest(name, columns)
    fix = f"pass {option} {suggestion}" if suggestion else "name a column the source has"
    return error(option, f"{where} has no column '{name}' (columns: {', '.join(columns) or 'none'})", fix)


def _source_problems(request: PrepareRequest, sources: list[Source]) -> Iterator[Problem]:
    settings = request.read
    for source in sources:
        if isinstance(source, MetadataTable):
            for option, column in (("--image-column", settings.image_column), ("--caption-column", settings.caption_column)):
                if column not in source.columns():
                    yield _column_problem(option, column, f"'{source.name}'", source.columns())
        if isinstance(source, ShardSource) and settings.caption_field is not None and settings.caption_field not in source.columns():
            yield _column_problem("--caption-field", settings.caption_field, f"the json of '{source.name}'", source.columns())
    if settings.caption_field is not None and not any(isinstance(source, ShardSource) for source in sources):
        yield warning("--caption-field", "only applies to shard sources, and none was given", "leave it out")
    offered = {source.name: source.columns() for source in sources}
    known = sorted({column for columns in offered.values() if columns for column in columns})
    for column in settings.extra_columns:
        if column in (IMAGE_COLUMN, CAPTION_COLUMN):
            yield error("--extra-column", f"'{column}' is already a column of the CSV", "name another column")
        elif not any(column in columns for columns in offered.values() if columns):
            option = "--group-by" if column == request.group_by else "--extra-column"
            suggestion = _closest(column, known)
            yield error(option, f"no source has a column '{column}' (columns: {', '.join(known) or 'none'})",
                        f"pass {option} {suggestion}" if suggestion else "name a column of a metadata file or a shard json field")


def _where_problems(request: PrepareRequest, sources: list[Source]) -> Iterator[Problem]:
    """--where on sources without metadata is an error; a field no source has is a warning (a likely typo), not a stop."""
    where = request.read.where
    if where is None:
        return
    for source in sources:
        if isinstance(source, SidecarFolder):
            yield error(WHERE_OPTION, f"'{source.name}' is a folder of images with .txt captions, which has no metadata to filter on",
                        "filter shards or a metadata table, or leave --where (and --classes) out")
            return
    for source in sources:
        if isinstance(source, MetadataTable):
            columns = source.columns()
            for column in source.where_columns():
                if column not in columns:
                    suggestion = closest(column, columns)
                    fix = f"did you mean '{suggestion}'?" if suggestion else f"the columns are: {', '.join(columns)}"
                    yield warning(WHERE_OPTION, f"field '{column}' is not a column of '{source.name}', so it reads as missing", fix)
    shard_sources = [source for source in sources if isinstance(source, ShardSource)]
    if shard_sources:
        yield from unknown_field_warnings(where, [metadata for source in shard_sources for metadata in source.first_metadata()])


def _resize_problems(request: PrepareRequest, sources: list[Source]) -> Iterator[Problem]:
    """--resize changes only images prepare-csv writes: shards, and shard members extracted for a CSV."""
    if request.checks.resize is None:
        return
    outputs = request.outputs
    if outputs.shards is None and outputs.extract_to is None:
        yield error("--resize", "has nothing to resize: the CSV names the images of folders and tables where they are",
                    "add --shards DIR to write resized copies, or leave --resize out")
    elif outputs.csv is not None and any(not isinstance(source, ShardSource) for source in sources):
        yield warning("--resize", "the CSV names the images of folders and tables where they are, at their own size",
                      "only shards and images extracted from shards are resized")


def _output_problems(request: PrepareRequest) -> Iterator[Problem]:
    files = request.outputs.files()
    inputs = {Path(spec).absolute() for spec in request.sources}
    seen: dict[Path, str] = {}
    for option, path in files:
        if path in seen:
            yield error(option, f"'{path}' is also given to {seen[path]}", "give each output its own path")
        seen[path] = option
        if path in inputs:
            yield error(option, f"'{path}' is one of the sources", "write the output somewhere else")
        if not request.overwrite and _holds_output(path, option):
            yield error(option, f"'{path}' already exists", "pass --overwrite to replace it, or choose another path")


def _holds_output(path: Path, option: str) -> bool:
    if option == "--shards":
        return path.is_dir() and (any(SHARD_FILE.fullmatch(p.name) for p in path.iterdir()) or (path / SIZES_FILE).exists())
    if option == "--extract-to":
        return path.is_dir() and any(path.iterdir())
    return path.exists()


def open_sources(specs: list[str], settings: ReadSettings) -> list[Source]:
    """Open every SOURCE argument (raises ProblemFound at the first that does not exist or cannot be read)."""
    return [open_source(spec, number, settings) for number, spec in enumerate(specs, start=1)]


def check_request(request: PrepareRequest, sources: list[Source]) -> list[Problem]:
    """Problems that stop the run before anything is written (missing columns, outputs in the way, --where on a folder), and
    warnings (a --where field no source has, reading the first samples of shard sources to tell)."""
    problems = [*_source_problems(request, sources), *_resize_problems(request, sources), *_output_problems(request)]
    if any(problem.severity is Severity.ERROR for problem in problems):
        return problems  # the run stops anyway: no shard is opened to look for --where's fields
    return [*problems, *_where_problems(request, sources)]


def count_rows(sources: list[Source]) -> int | None:
    """Rows all sources will yield, if every source can tell cheaply; else None."""
    counts = [source.count() for source in sources]
    return None if any(count is None for count in counts) else sum(count for count in counts if count is not None)


def is_validation(group: str, seed: int, fraction: float) -> bool:
    """Whether a group of rows goes to validation: a hash of (seed, group) below `fraction` of the hash range.

    The same seed always gives the same split, groups are never divided, and nothing is held in memory.
    """
    digest = hashlib.blake2b(f"{seed}\0{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def _checked(row: Row, verdict: ImageVerdict | None, dedupe: Deduplicator | None, template: CaptionTemplate | None) -> Row | Reason:
    """The row ready to write (its caption from DICOM tags filled in), or why it is rejected."""
    if row.rejected is not None:
        return row.rejected
    if verdict is not None and verdict.problem is not None:
        return verdict.problem
    if row.missing_caption is not None:
        if verdict is None or verdict.caption is None or template is None:
            return row.missing_caption
        if not verdict.caption:
            return Reason(EMPTY_CAPTION, template.empty_reason())
        row = replace(row, caption=verdict.caption, missing_caption=None)
    duplicate = dedupe.problem(verdict.digest, row.source) if dedupe is not None and verdict is not None else None
    return duplicate or row


def _count_image(result: PrepareResult, verdict: ImageVerdict | None) -> None:
    if verdict is None or verdict.kind is None:
        return
    result.kinds[verdict.kind] += 1
    result.rotated += verdict.rotated
    result.reduced += verdict.reduced
    result.converted += verdict.converted is not None and not verdict.resized
    result.resized += verdict.resized


def prepare(request: PrepareRequest, sources: list[Source], progress: Callable[[int], None] = lambda n: None) -> PrepareResult:
    """Read every row of the sources, check it, and write it to train or val, or to the rejects file.

    All files are written under temporary names and renamed at the end; an exception (Ctrl-C
    included) leaves no CSV behind.
    """
    outputs, result = request.outputs, PrepareResult()
    dedupe = Deduplicator() if request.checks.digest else None
    reported = 0

    def counted() -> None:
        """Count a row read, advancing the progress bar every PROGRESS_EVERY rows."""
        nonlocal reported
        result.read += 1
        if result.read - reported >= PROGRESS_EVERY:
            progress(result.read - reported)
            reported = result.read

    def kept(rows: Iterable[Row]) -> Iterator[Row]:
        """The rows --where keeps; the others are counted here, and never checked or decoded."""
        for row in rows:
            if row.filtered:
                counted()
                result.filtered += 1
            else:
                yield row

    rows = kept(chain.from_iterable(source.rows() for source in sources))
    with ExitStack() as stack:
        rejects = stack.enter_context(AtomicCsvWriter(outputs.rejects, REJECTS_COLUMNS))
        extras = request.read.extra_columns
        train = Destination(stack, outputs.csv, outputs.shards, extras, request.shard_size, outputs.extract_to)
        val = (Destination(stack, outputs.val_csv, outputs.val_shards, extras, request.shard_size, outputs.extract_to)
               if request.val_fraction else None)
        for row, verdict in inspect_rows(rows, request.checks, request.workers):
            counted()
            checked = _checked(row, verdict, dedupe, request.checks.caption_template)
            problem = checked if isinstance(checked, Reason) else None
            if isinstance(checked, Row):
                group = checked.extras.get(request.group_by or "") or checked.source
                goes_to_val = val is not None and is_validation(group, request.seed, request.val_fraction)
                destination = val if goes_to_val and val is not None else train
                problem = (destination.write(checked, verdict.converted, verdict.converted_ext, verdict.resized) if verdict is not None
                           else destination.write(checked))
                if problem is None:
                    _count_image(result, verdict)
            if problem is not None:
                rejects.write([row.source, problem.text()])
                result.rejected[problem.kind] += 1
        progress(result.read - reported)
        result.train, result.val = train.written, val.written if val is not None else 0
    train_names, val_names = train.shard_names(), val.shard_names() if val is not None else set()
    result.train_shards, result.val_shards = len(train_names), len(val_names)
    if request.overwrite:
        remove_stale_shards(outputs.shards, train_names)
        remove_stale_shards(outputs.val_shards, val_names)
    return result

