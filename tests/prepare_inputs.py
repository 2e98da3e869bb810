"""Real inputs for the prepare-csv tests: figures with sidecar captions (some broken), metadata tables, shards."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

# Captions that trip naive CSV writing: separators, quotes, line breaks, non-ASCII, padding.
TRICKY_CAPTIONS = (
    "Axial CT, contrast-enhanced, showing a 3 cm mass",
    'H&E stain of the "invasive" front',
    "Panel A: before treatment\nPanel B: after treatment",
    "Fluorescence (GFP), scale bar 10 µm — confocal",
    "   Ultrasound of the left kidney   ",
    "Tab\tseparated; semicolon; pipe | text",
    "Ünïcödé: 肺 X線",
    "Windows line\r\nbreak",
)
GOOD_FIGURES = 16


@dataclass
class Figures:
    """A folder of figures: `good` maps image path to the caption training must see; the rest are broken on purpose."""

    root: Path
    good: dict[Path, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows a reader of this folder sees (good images plus every broken one)."""
        return len(self.good) + len(self.rejected)


def figure(index: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Image.Image:
    """A small distinct picture (a colour and a stripe that depend on `index`)."""
    image = Image.new("RGB", size, ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256))
    for x in range(size[0]):
        image.putpixel((x, index % size[1]), (255, 255, 255))
    return image.convert(mode)


def encoded(image: Image.Image, image_format: str) -> bytes:
    """The image's file bytes in a format."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def write_figures(root: Path) -> Figures:
    """GOOD_FIGURES readable figures (JPEG, PNG, grayscale, palette) with captions, plus one of each kind of bad row:
    corrupt, truncated, tiny, duplicated, without caption, caption without image, empty caption, 'NA' caption."""
    figures = Figures(root)
    (root / "sub").mkdir(parents=True)
    kinds = [("JPEG", "RGB", "jpg"), ("PNG", "RGB", "png"), ("PNG", "L", "png"), ("PNG", "P", "png")]
    for index in range(GOOD_FIGURES):
        image_format, mode, ext = kinds[index % len(kinds)]
        folder = root / "sub" if index % 3 == 0 else root
        path = folder / f"fig_{index:02d}.{ext}"
        path.write_bytes(encoded(figure(index, mode=mode), image_format))
        caption = TRICKY_CAPTIONS[index % len(TRICKY_CAPTIONS)] + f" (figure {index})"
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")
        figures.good[path] = caption.replace("\r\n", "\n").strip()  # text files are read with universal newlines
    jpeg = encoded(figure(99), "JPEG")
    broken = {
        "corrupt.jpg": (b"this is not an image at all" * 10, "unreadable image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated image"),
        "tiny.png": (encoded(figure(5, size=(8, 8)), "PNG"), "image too small"),
        "sub/fig_00_copy.jpg": ((root / "sub" / "fig_00.jpg").read_bytes(), "duplicate image"),
        "no_caption.jpg": (jpeg, "no caption"),
        "empty_caption.jpg": (jpeg, "empty caption"),
        "na_caption.jpg": (jpeg, "empty caption"),
    }
    for name, (data, reason) in broken.items():
        (root / name).write_bytes(data)
        figures.rejected[str(root / name)] = reason
        if name != "no_caption.jpg":
            caption = {"empty_caption.jpg": "  \n", "na_caption.jpg": "NA"}.get(name, f"caption of {name}")
            (root / name).with_suffix(".txt").write_text(caption, encoding="utf-8")
    (root / "orphan.txt").write_text("a caption whose figure was lost", encoding="utf-8")
    figures.rejected[str(root / "orphan.txt")] = "no image"
    return figures


def metadata_records(figures: Figures, base: Path) -> list[dict[str, str]]:
    """Records naming every good figure relative to `base` (plus an article column), one missing file, one empty caption."""
    records = [{"path": str(path.relative_to(base)), "legend": caption, "article": f"PMC{index // 2}", "label": f"label {index % 3}"}
               for index, (path, caption) in enumerate(sorted(figures.good.items()))]
    records.append({"path": "figures/never_existed.jpg", "legend": "lost figure", "article": "PMC90", "label": "label 0"})
    records.append({"path": str(next(iter(figures.good)).relative_to(base)), "legend": "", "article": "PMC91", "label": "label 1"})
    return records


def write_metadata(records: list[dict[str, str]], path: Path) -> Path:
    """The records as CSV, TSV, JSON Lines or Parquet, chosen by the suffix of `path`."""
    import csv

    if path.suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(records[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(records)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    else:
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(records), path)
    return path


def write_biomedica_shards(folder: Path, samples: int, per_shard: int) -> dict[str, dict]:
    """Shards in BIOMEDICA's layout written by webdataset's own ShardWriter; returns each good sample by key.

    Besides `samples` good samples there is one without txt and one whose jpg is corrupt.
    """
    import webdataset

    folder.mkdir(parents=True)
    good: dict[str, dict] = {}
    with webdataset.ShardWriter(str(folder / "%06d.tar"), maxcount=per_shard, verbose=0) as writer:
        for index in range(samples):
            key = f"batch0-PMC{1000 + index // 2}-{index % 2}-{index:04d}"
            metadata = {"image_primary_label": ["radiology" if index % 2 else "microscopy"], "image_secondary_label": [],
                        "article_title": f"Case report {index // 2}", "image_panel_type": "single"}
            caption = TRICKY_CAPTIONS[index % len(TRICKY_CAPTIONS)].strip()
            writer.write({"__key__": key, "jpg": encoded(figure(index), "JPEG"), "txt": caption, "json": metadata})
            good[key] = {"caption": caption, **metadata}
        writer.write({"__key__": "batch0-PMC9999-0-nocaption", "jpg": encoded(figure(1), "JPEG"), "json": {"article_title": "x"}})
        writer.write({"__key__": "batch0-PMC9999-1-corrupt", "jpg": b"\xff\xd8 broken", "txt": "broken", "json": {"article_title": "y"}})
    return good
