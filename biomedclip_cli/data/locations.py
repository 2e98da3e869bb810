"""What a --train-data or --val-data value names: its '::' sources, local files or remote URLs, CSV or shards by suffix."""

from __future__ import annotations

CSV_SUFFIXES = ("csv", "tsv")
SHARD_SUFFIXES = ("tar",)


def is_remote(url: str) -> bool:
    """Whether a data path is a URL or pipe that cannot be checked on the local disk."""
    return "://" in url or url.startswith("pipe:")


def sources(data: str) -> list[str]:
    """The '::'-joined sources of a data option."""
    return [part for part in data.split("::") if part]


def suffix_type(data: str) -> str | None:
    """open_clip's auto rule: the text after the last dot decides csv or webdataset."""
    suffix = data.rsplit(".", 1)[-1].lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in SHARD_SUFFIXES:
        return "webdataset"
    return None
