"""`bmclip eval` on the demo figures with a tiny model trained in the test: far above chance, and a shuffled-label control at chance."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from conftest import run_bmclip

from biomedclip_cli.data.synthetic import MODALITIES, Storage

pytestmark = pytest.mark.slow
CLASSES = len(MODALITIES)
CHANCE = 1 / CLASSES  # equally many held-out figures of each class


def eval_json(*args: str) -> dict:
    result = run_bmclip("eval", "--workers", "0", "--json", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def by_name(payload: dict) -> dict[str, dict]:
    return {result["name"]: result for result in payload["results"]}


def test_the_trained_model_scores_far_above_the_untrained_one(trained_run: Path, demo_data):
    results = by_name(eval_json("--model", "bmclip-tiny", "--checkpoint", str(trained_run), "--checkpoint", "none",
                                "--data", str(demo_data.heldout_csv), "--label-column", "label"))
    trained, untrained = results[str(trained_run)]["zero_shot"], results["untrained"]["zero_shot"]
    assert trained["top1"] >= CHANCE + 0.3, trained
    assert untrained["top1"] <= CHANCE + 0.15, untrained
    assert trained["samples"] == 10 * CLASSES and sum(map(sum, trained["confusion"])) == 10 * CLASSES
    assert trained["balanced_accuracy"] == pytest.approx(sum(trained["per_class_recall"].values()) / CLASSES)
    trained_retrieval, untrained_retrieval = results[str(trained_run)]["retrieval"], results["untrained"]["retrieval"]
    assert trained_retrieval["image_to_text"]["R@10"] > untrained_retrieval["image_to_text"]["R@10"]
    assert trained_retrieval["text_to_image"]["median_rank"] < untrained_retrieval["text_to_image"]["median_rank"]


def test_eval_reads_scans_as_the_run_did_and_clipping_them_costs_the_scan_classes_only(trained_run: Path, demo_data):
    """The demo stores its scans as DICOM and 16-bit files: read as plain Pillow reads them (clip), the model loses them."""
    as_trained = eval_json("--checkpoint", str(trained_run), "--data", str(demo_data.heldout_csv), "--label-column", "label")
    clipped = eval_json("--checkpoint", str(trained_run), "--data", str(demo_data.heldout_csv), "--label-column", "label",
                        "--intensity", "clip")
    assert as_trained["intensity"] == "auto" and clipped["intensity"] == "clip"  # the run's own, from its bmclip.yaml
    recall, clipped_recall = (payload["results"][0]["zero_shot"]["per_class_recall"] for payload in (as_trained, clipped))
    scans = [m.label for m in MODALITIES if m.storage is not Storage.JPEG]
    figures = [m.label for m in MODALITIES if m.storage is Storage.JPEG]
    assert {label: clipped_recall[label] for label in figures} == {label: recall[label] for label in figures}
    mean = sum(recall[label] for label in scans) / len(scans)
    assert sum(clipped_recall[label] for label in scans) / len(scans) <= mean - 0.3, (recall, clipped_recall)


def test_shuffled_labels_score_near_chance(trained_run: Path, demo_data, tmp_path: Path):
    with demo_data.heldout_csv.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    labels = [row["label"] for row in rows]
    random.Random(0).shuffle(labels)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["filepath", "label"])
        writer.writerows([row["filepath"], label] for row, label in zip(rows, labels, strict=True))
    control = eval_json("--checkpoint", str(trained_run), "--data", str(shuffled))["results"][0]
    assert control["retrieval"] is None
    assert abs(control["zero_shot"]["top1"] - CHANCE) <= 0.15, control["zero_shot"]


def test_compare_puts_the_start_and_every_epoch_side_by_side(trained_run: Path, demo_data):
    result = run_bmclip("eval", "--workers", "0", "--compare", str(trained_run), "--data", str(demo_data.heldout_csv),
                        env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("retrieval:")[0]
    rows = [line.split()[0] for line in table.splitlines() if line.strip().startswith(("start", "epoch_"))]
    assert rows == ["start", *(f"epoch_{k}" for k in range(1, 7))]
    assert "top-1" in table and "i→t" in table and "confusion matrix of epoch_" in result.stdout
    assert "epoch_6: bmclip-tiny with" in result.stdout  # the model came from the run's bmclip.yaml


def test_classnames_and_templates_files(trained_run: Path, demo_data, tmp_path: Path):
    classnames = tmp_path / "classes.txt"
    classnames.write_text("ultrasound\nchest x-ray: chest radiograph\nt1 brain mri: T1-weighted brain MRI\nt2 brain mri\nhead ct\n"
                          "abdominal ct: CT of the abdomen\nh&e histology\nfluorescence microscopy\nknee mri: knee MRI\n")
    templates = tmp_path / "templates.txt"
    templates.write_text("a {} image.\na figure showing {}.\n")
    result = eval_json("--checkpoint", str(trained_run), "--data", str(demo_data.heldout_csv), "--caption-column", "caption",
                       "--classnames", str(classnames), "--templates", str(templates))["results"][0]["zero_shot"]
    assert result["classnames"] == ["ultrasound", "chest x-ray", "t1 brain mri", "t2 brain mri", "head ct", "abdominal ct",
                                    "h&e histology", "fluorescence microscopy", "knee mri"]
    assert result["per_class_recall"]["knee mri"] is None and result["per_class_samples"]["knee mri"] == 0
    assert result["top5"] is not None
    assert result["top1"] >= CHANCE + 0.2
