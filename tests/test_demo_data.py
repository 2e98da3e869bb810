"""The synthetic demo dataset: eight classes, as a CSV and as BIOMEDICA-layout shards, held-out kept apart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import webdataset as wds

from biomedclip_cli.data.demo import write_demo_dataset
from biomedclip_cli.data.synthetic import MODALITIES, generate


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_csv_lists_every_figure_with_caption_and_label(demo_data):
    rows = read_rows(demo_data.train_csv)
    assert len(rows) == demo_data.train_samples == 25 * len(MODALITIES)
    assert {row["label"] for row in rows} == {m.label for m in MODALITIES}
    assert all(Path(row["filepath"]).is_file() and row["caption"] for row in rows)


def test_held_out_figures_are_never_in_the_training_data(demo_data):
    train = {row["filepath"] for row in read_rows(demo_data.train_csv)}
    heldout = read_rows(demo_data.heldout_csv)
    assert len(heldout) == 10 * len(MODALITIES)
    assert not train & {row["filepath"] for row in heldout}
    train_bytes = {Path(p).read_bytes() for p in train}
    assert not train_bytes & {Path(row["filepath"]).read_bytes() for row in heldout}


def test_shards_hold_jpg_txt_json_samples_counted_in_sizes_json(demo_data):
    folder = Path(demo_data.shards).parent
    sizes = json.loads((folder / "sizes.json").read_text())
    assert sizes == {"000000.tar": 100, "000001.tar": 100}
    samples = list(wds.WebDataset(demo_data.shards, shardshuffle=False).decode("pil"))
    assert len(samples) == 200 == 25 * len(MODALITIES)
    first = samples[0]
    assert first["jpg"].size == (64, 64) and first["txt"]
    assert first["json"]["image_primary_label"][0] in {m.label for m in MODALITIES}
    assert first["__key__"].count("-") == 3 and "-PMC" in first["__key__"]


def test_same_seed_same_figures_and_captions_vary():
    first = [(s.caption, s.image.tobytes()) for s in generate(3, seed=7)]
    again = [(s.caption, s.image.tobytes()) for s in generate(3, seed=7)]
    other = [(s.caption, s.image.tobytes()) for s in generate(3, seed=8)]
    assert first == again and first != other
    captions = {s.caption for s in generate(30, seed=1) if s.label == "t2 brain mri"}
    assert len(captions) > 5


def test_at_least_eight_classes_and_the_mri_sequences_are_named_in_their_captions():
    assert len(MODALITIES) >= 8 and len({m.label for m in MODALITIES}) == len(MODALITIES)
    captions = [(s.label, s.caption) for s in generate(20, seed=2)]
    assert all("T1" in caption and "T2" not in caption for label, caption in captions if label == "t1 brain mri")
    assert all("T2" in caption and "T1" not in caption for label, caption in captions if label == "t2 brain mri")


@pytest.mark.parametrize("interrupted_at", [3, 12], ids=["training split", "held-out split"])
def test_an_interruption_leaves_no_partial_file(tmp_path: Path, interrupted_at: int):
    written = 0

    def ctrl_c_at_sample(count: int) -> None:
        nonlocal written
        written += count
        if written == interrupted_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_demo_dataset(tmp_path / "data", per_class=2, heldout_per_class=1, seed=0, shard_size=4, progress=ctrl_c_at_sample)
    assert not [path.name for path in (tmp_path / "data").rglob("*") if path.name.endswith(".partial")]
    assert not (tmp_path / "data" / "heldout.csv").exists()


def test_refuses_to_overwrite_a_dataset(invoke, tmp_path):
    write_demo_dataset(tmp_path / "data", per_class=1, heldout_per_class=1, seed=0, shard_size=10)
    result = invoke("demo-data", str(tmp_path / "data"))
    assert result.exit_code == 2 and "already holds a dataset" in result.stderr
