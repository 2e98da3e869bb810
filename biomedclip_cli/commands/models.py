"""`bmclip list-models`: the models a run can start from, their facts, and whether their weights are cached here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import JsonOpt
from biomedclip_cli.problems import ProblemFound

if TYPE_CHECKING:
    from biomedclip_cli.models.catalog import CatalogEntry

EPILOG = examples(
    ("curated biomedical models", "bmclip list-models --biomedical"),
    ("ViT-B-32 weights already in the cache", "bmclip list-models --filter ViT-B-32 --cached"),
    ("a BiomedCLIP copy on local disk, and its train flags", "bmclip list-models --local-dir /models/biomedclip --biomedical"),
    ("train flags of every model of image size 224", "bmclip list-models --json | jq '.[] | select(.image_size == 224)'"),
)


def format_params(count: int | None) -> str:
    """A parameter count as 151.3M or 1.2B ('-' when unknown)."""
    if count is None:
        return "-"
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.1f}M"


def list_models(
    filter_text: Annotated[Optional[str], typer.Option("--filter",
                                                       help="Keep entries whose name, tag or note contains this text (any case).",
                                                       metavar="TEXT")] = None,
    biomedical: Annotated[bool, typer.Option("--biomedical", help="Only the curated biomedical models.")] = False,
    cached: Annotated[bool, typer.Option("--cached", help="Only weights already in the local cache (usable offline).")] = False,
    as_json: JsonOpt = False,
    local_dir: Annotated[Optional[list[Path]], typer.Option(
        "--local-dir",
        help="A model folder on disk (open_clip_config.json and weights) to list first, as --model local-dir:FOLDER. Repeatable.",
        metavar="FOLDER", show_default=False)] = None,
) -> None:
    """List starting points for bmclip train: curated biomedical models, then every open_clip pretrained (model, tag) pair.

    Each row gives the --model / --pretrained values to paste, the parameters, image size and embedding width (from open_clip's model
    configs; no model is built), and whether the weights are already in the Hugging Face or open_clip cache (no network is used).
    """
    from biomedclip_cli.models.catalog import BIOMEDICAL, LOCAL, OPEN_CLIP, catalog
    from biomedclip_cli.models.validation import check_local_folder

    for folder in local_dir or []:
        problems = check_local_folder(folder, "--local-dir")
        if problems:
            raise ProblemFound(problems[0])
    entries = catalog(filter_text, biomedical_only=biomedical, cached_only=cached, folders=local_dir)
    if as_json:
        typer.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    if not entries:
        console.print_warning("no model matches; try without --filter/--cached, or bmclip list-models --biomedical")
        return
    local = [entry for entry in entries if entry.section == LOCAL]
    curated = [entry for entry in entries if entry.section == BIOMEDICAL]
    others = [entry for entry in entries if entry.section == OPEN_CLIP]
    if local:
        _print_curated("Model folders", local)
    if curated:
        _print_curated("Biomedical models", curated)
    if others:
        _print_table(others)
    console.out.print(f"{len(entries)} entries ({sum(1 for e in entries if e.cached)} cached here)", markup=False)


def _facts_line(entry: CatalogEntry) -> str:
    facts = entry.facts
    size = f"{facts.image_size} px" if facts and facts.image_size else "image size -"
    embed = f"embed {facts.embed_dim}" if facts and facts.embed_dim else "embed -"
    params = f"{format_params(facts.params)} params" if facts and facts.params else "params unknown"
    return f"{params}, {size}, {embed}"


def _print_curated(title: str, entries: list[CatalogEntry]) -> None:
    console.out.print(f"[bold]{title}[/]")
    for entry in entries:
        cached = f"cached: {entry.cached}" if entry.cached else "not cached"
        console.out.print(f"  [bold]{entry.title}[/]  ", end="")
        console.out.print(f"{_facts_line(entry)}; {cached}", markup=False)
        console.out.print(f"    {entry.train_flags()}", markup=False)
        console.out.print(f"    {entry.note} ({entry.source})", markup=False, style="dim")
        if entry.download:
            console.out.print(f"    download first: {entry.download}", markup=False)
    console.out.print()


def _print_table(entries: list[CatalogEntry]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="open_clip pretrained weights", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("--model")
    table.add_column("--pretrained")
    for header in ("params", "image", "embed"):
        table.add_column(header, justify="right")
    table.add_column("cached")
    for entry in entries:
        facts = entry.facts
        table.add_row(entry.model, entry.pretrained or "", format_params(facts.params if facts else None),
                      str(facts.image_size) if facts and facts.image_size else "-",
                      str(facts.embed_dim) if facts and facts.embed_dim else "-", "[green]yes[/]" if entry.cached else "no")
    console.out.print(table)
