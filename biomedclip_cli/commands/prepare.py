"""`bmclip prepare-csv`: turn folders of figures, metadata tables or BIOMEDICA shards into checked training data."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.pixel_options import IntensityOpt, MaxPixelsOpt, pixel_settings
from biomedclip_cli.pixel_policy import DEFAULT_INTENSITY, DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from biomedclip_cli.data.prepare.pipeline import PrepareRequest, PrepareResult
    from biomedclip_cli.pixel_policy import PixelSettings

EPILOG = examples(
    ("figures with captions beside them, checked, 5% held out",
     "bmclip prepare-csv figures/ --out train.csv --val-fraction 0.05 --check-images"),
    ("a metadata table whose image column is called path", "bmclip prepare-csv meta.parquet --image-column path --out train.csv"),
    ("BIOMEDICA shards, the figures of one paper on one side of the split",
     "bmclip prepare-csv 'shards/{000000..000009}.tar' --group-by article_title \\\n    --val-fraction 0.05 --out data/train.csv"),
    ("DICOM scans without text: captions made from their tags, 8-bit PNG shards",
     "bmclip prepare-csv scans/ --shards data/shards \\\n    --caption-template '{Modality} {BodyPartExamined}: {StudyDescription}'"),
    ("16-bit CT exports through a soft-tissue window (Hounsfield units)",
     "bmclip prepare-csv ct/ --out train.csv --intensity window:40,400"),
    ("BIOMEDICA's clinical images and micrographs, 512-pixel shards",
     "bmclip prepare-csv 'in/{000000..000009}.tar' --shards data/shards \\\n"
     "    --classes clinical-imaging,microscopy --resize 512"),
    ("only figures under a CC BY licence",
     "bmclip prepare-csv 'in/{000000..000009}.tar' --shards data/shards \\\n"
     "    --where 'article_license startswith \"CC BY\"'"),
)

OUTPUT, SOURCES, CHECKS = "Output", "Reading sources", "Checking images"
KIND_ORDER = ("8-bit", "high bit depth", "DICOM")  # data/pixels/reader.py ImageKind, in the summary's order
INTERRUPTED_EXIT_CODE = 130


def prepare_csv(
    sources: Annotated[list[str], typer.Argument(
        help="Folders of images with .txt captions beside them, metadata files (.csv .tsv .jsonl .parquet) naming images "
             "relative to themselves, or webdataset shards ('shards/{000000..000009}.tar').", metavar="SOURCE", show_default=False)],
    out: Annotated[Optional[Path], typer.Option(help="Training CSV to write (filepath,caption plus extra columns).",
                                                rich_help_panel=OUTPUT, metavar="CSV", show_default=False)] = None,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.99,
                                                help="Share of rows (of groups, with --group-by) put in the validation split.",
                                                rich_help_panel=OUTPUT)] = 0.0,
    val_out: Annotated[Optional[Path], typer.Option(help="Validation CSV to write.", rich_help_panel=OUTPUT, metavar="CSV",
                                                    show_default="val.csv beside --out")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split; the same seed gives the same split.", rich_help_panel=OUTPUT)] = 0,
    group_by: Annotated[Optional[str], typer.Option(
        help="Column whose rows stay on one side of the split (e.g. the article), also written as a column.",
        rich_help_panel=OUTPUT, metavar="COLUMN", show_default=False)] = None,
    rejects: Annotated[Optional[Path], typer.Option(help="CSV listing every row not written (source,reason).", rich_help_panel=OUTPUT,
                                                    metavar="CSV", show_default="<out stem>.rejects.csv beside --out")] = None,
    shards: Annotated[Optional[Path], typer.Option(help="Also (or instead) write webdataset shards in BIOMEDICA's layout, with sizes.json.",
                                                   rich_help_panel=OUTPUT, metavar="DIR", show_default=False)] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Samples per shard.", rich_help_panel=OUTPUT)] = 10_000,
    resize: Annotated[Optional[int], typer.Option(
        help="Downscale the images prepare-csv writes (to --shards, or extracted from shards for --out) whose short side is larger "
             "to this many pixels, keeping the aspect ratio: JPEG as JPEG (quality 95), the rest as PNG; smaller ones are copied "
             "byte for byte. At least 32.", rich_help_panel=OUTPUT, metavar="SHORT_SIDE", show_default=False)] = None,
    extract_to: Annotated[Optional[Path], typer.Option(help="Folder for images taken out of shard sources (for the CSV).",
                                                       rich_help_panel=OUTPUT, metavar="DIR",
                                                       show_default="<out stem>-images beside --out")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that already exist.", rich_help_panel=OUTPUT)] = False,
    image_column: Annotated[str, typer.Option(help="Metadata column naming the image file.", rich_help_panel=SOURCES)] = "filepath",
    caption_column: Annotated[str, typer.Option(help="Metadata column holding the caption.", rich_help_panel=SOURCES)] = "caption",
    caption_field: Annotated[Optional[str], typer.Option(help="Shards: take the caption from this json field instead of txt.",
                                                         rich_help_panel=SOURCES, metavar="FIELD", show_default=False)] = None,
    extra_column: Annotated[Optional[list[str]], typer.Option(
        help="Metadata column or shard json field to copy as an extra column (repeat for several; '__key__' is the shard sample key).",
        rich_help_panel=SOURCES, metavar="NAME", show_default=False)] = None,
    where: Annotated[Optional[list[str]], typer.Option(
        help="Keep only the rows whose shard json (or metadata table record) matches, e.g. 'article_license startswith \"CC BY\"' "
             "or 'image_primary_label in [\"Microscopy\"]' (==, !=, in, not in, startswith, contains; and, or, not). Repeat to AND "
             "several; the others are counted as filtered out.", rich_help_panel=SOURCES, metavar="EXPR", show_default=False)] = None,
    classes: Annotated[Optional[str], typer.Option(
        help="Keep only these BIOMEDICA global classes, comma-separated (e.g. clinical-imaging,microscopy): a shortcut for "
             "--where 'image_primary_label in [...]', ANDed with --where.", rich_help_panel=SOURCES, metavar="NAMES",
        show_default=False)] = None,
    check_images: Annotated[bool, typer.Option(help="Decode every image with Pillow (as training will) and reject those that fail.",
                                               rich_help_panel=CHECKS)] = False,
    min_side: Annotated[Optional[int], typer.Option(min=1, help="Reject images whose shorter side is under this many pixels.",
                                                    rich_help_panel=CHECKS, metavar="PIXELS", show_default=False)] = None,
    dedupe: Annotated[bool, typer.Option(help="Reject images whose bytes repeat an earlier image.", rich_help_panel=CHECKS)] = False,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Processes checking images.", rich_help_panel=CHECKS,
                                                   show_default="all cores")] = None,
    intensity: IntensityOpt = DEFAULT_INTENSITY,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    caption_template: Annotated[Optional[str], typer.Option(
        help="Captions of DICOM images that have none, from their tags: DICOM keywords in braces, e.g. "
             "'{Modality} {BodyPartExamined}: {StudyDescription}'. A row whose tags fill nothing in is rejected.",
        rich_help_panel=SOURCES, metavar="TEMPLATE", show_default=False)] = None,
) -> None:
    """Turn folders of figures with captions, metadata tables (CSV/TSV, JSON Lines, Parquet) or webdataset shards into a training CSV (and
    shards) that open_clip reads as is.

    Every row read is either written or listed in the rejects file with its reason (missing file, unreadable or truncated image, image too
    small or too large, empty caption, duplicate), and the counts are reconciled at the end. Images are read as training reads them: 16-bit
    and DICOM mapped to 8 bits by --intensity, EXIF orientation applied; shards get them as 8-bit PNG. Outputs are written under temporary
    names and renamed when complete.
    """
    from biomedclip_cli.data.prepare.dicom_captions import CaptionTemplate
    from biomedclip_cli.data.prepare.image_checks import CheckSettings, available_cores
    from biomedclip_cli.data.prepare.pipeline import PrepareRequest, check_request, count_rows, open_sources, prepare, resolve_outputs
    from biomedclip_cli.data.prepare.resizing import check_short_side
    from biomedclip_cli.data.prepare.sources import ReadSettings
    from biomedclip_cli.sample_filter import chosen_samples

    chosen = chosen_samples(where or [], classes)
    check_short_side(resize)
    extras = tuple(dict.fromkeys([*(extra_column or []), *([group_by] if group_by else [])]))
    read = ReadSettings(image_column, caption_column, caption_field, extras, captions_from_tags=caption_template is not None,
                        where=chosen)
    pixels = pixel_settings(intensity, max_pixels)
    template = CaptionTemplate.parse(caption_template) if caption_template is not None else None
    opened = open_sources(sources, read)
    outputs = resolve_outputs(out, val_out, rejects, shards, extract_to, val_fraction, opened)
    checks = CheckSettings(check_images, min_side, dedupe, pixels, template, for_shards=shards is not None, resize=resize)
    request = PrepareRequest(tuple(sources), outputs, read, checks, val_fraction, seed, group_by, workers or available_cores(),
                             shard_size, overwrite)
    console.report(check_request(request, opened))
    try:
        with console.progress_bar("checking images" if check_images else "reading images", count_rows(opened), unit="rows") as advance:
            result = prepare(request, opened, advance)
    except KeyboardInterrupt:
        console.err.print("bmclip: interrupted; no CSV was finished (its temporary file was removed)", markup=False)
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
    _print_summary(request, result)
    if not result.train:
        if result.filtered and not result.written:
            console.print_warning(f"--where kept none of the {_count(result.read)} rows read ({_count(result.filtered)} filtered out, "
                                  f"{_count(result.rejected_total)} rejected); the outputs hold no sample")
        else:
            console.print_warning("no row was written to the training set; see the rejects file for why")
        raise typer.Exit(1)


def _count(number: int) -> str:
    return f"{number:,}"


def next_commands(request: PrepareRequest, result: PrepareResult) -> list[list[str]]:
    """The `bmclip train` command lines that train on what was written (CSV first, then shards)."""
    from biomedclip_cli.data.prepare.destinations import CAPTION_COLUMN, IMAGE_COLUMN
    from biomedclip_cli.data.shard_writer import shard_pattern

    outputs, lines = request.outputs, []
    if outputs.csv:
        line = ["bmclip", "train", "--train-data", str(outputs.csv), "--csv-img-key", IMAGE_COLUMN,
                "--csv-caption-key", CAPTION_COLUMN, "--csv-separator", ","]
        if outputs.val_csv and result.val:
            line += ["--val-data", str(outputs.val_csv)]
        lines.append(line + _pixel_flags(request.checks.pixels))
    if outputs.shards:
        line = ["bmclip", "train", "--train-data", shard_pattern(outputs.shards, result.train_shards), "--train-num-samples",
                str(result.train)]
        if outputs.val_shards and result.val:
            line += ["--val-data", shard_pattern(outputs.val_shards, result.val_shards), "--val-num-samples", str(result.val)]
        lines.append(line)
    return lines


def _pixel_flags(pixels: PixelSettings) -> list[str]:
    """The train flags that read a CSV's images as prepare-csv read them (none for the defaults)."""
    flags = ["--intensity", pixels.intensity.text()] if pixels.intensity.text() != DEFAULT_INTENSITY else []
    return flags + (["--max-pixels", str(pixels.max_pixels)] if pixels.max_pixels != DEFAULT_MAX_PIXELS else [])


def _image_lines(request: PrepareRequest, result: PrepareResult) -> list[str]:
    """What kinds of image were written, and what was done to them: the policy named when it mapped any."""
    if not result.kinds:
        return []
    kinds = ", ".join(f"{_count(result.kinds[kind])} {kind}" for kind in KIND_ORDER if result.kinds[kind])
    notes = [f"{_count(result.rotated)} stored rotated (EXIF), read upright"] if result.rotated else []
    notes += [f"{_count(result.reduced)} over --max-pixels, read reduced"] if result.reduced else []
    lines = [f"  images    {kinds}" + (f"; {', '.join(notes)}" if notes else "")]
    mapped = sum(count for kind, count in result.kinds.items() if kind != "8-bit")
    if mapped:
        lines.append(f"  pixels    {_count(mapped)} high-bit-depth/DICOM images mapped to 8 bits by --intensity "
                     f"{request.checks.pixels.intensity.describe()}")
    if result.converted:
        lines.append(f"  converted {_count(result.converted)} images written to the shards as the 8-bit PNG the model sees")
    if request.checks.resize is not None:
        lines.append(f"  resized   {_count(result.resized)} images downscaled to a short side of {request.checks.resize} pixels "
                     "(JPEG as JPEG quality 95, the rest as PNG)")
    return lines


def _print_summary(request: PrepareRequest, result: PrepareResult) -> None:
    outputs, print_ = request.outputs, console.out.print
    print_(f"read {_count(result.read)} rows from {len(request.sources)} source(s)", markup=False)
    if outputs.csv:
        print_(f"  train     {_count(result.train):>10}  {outputs.csv}", markup=False)
    if outputs.val_csv:
        print_(f"  val       {_count(result.val):>10}  {outputs.val_csv}", markup=False)
    if outputs.shards:
        print_(f"  shards    {_count(result.written):>10}  {outputs.shards} ({result.train_shards + result.val_shards} shards, sizes.json)",
               markup=False)
    for image_line in _image_lines(request, result):
        print_(image_line, markup=False)
    where = request.read.where
    if where is not None:
        print_(f"  filtered  {_count(result.filtered):>10}  not kept by --where {where.text}", markup=False)
    reasons = ", ".join(f"{kind} {_count(count)}" for kind, count in result.rejected.most_common())
    print_(f"  rejected  {_count(result.rejected_total):>10}  {outputs.rejects}" + (f" ({reasons})" if reasons else ""), markup=False)
    balance = "=" if result.written + result.filtered + result.rejected_total == result.read else "!="
    filtered = f" + {_count(result.filtered)} filtered out by --where" if where is not None else ""
    print_(f"{_count(result.written)} written{filtered} + {_count(result.rejected_total)} rejected {balance} {_count(result.read)} read",
           markup=False)
    if result.train:
        print_("next:", markup=False)
        for line in next_commands(request, result):
            print_(f"  {shlex.join(line)}", markup=False)
