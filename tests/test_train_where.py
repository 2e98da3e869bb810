"""`bmclip train --where/--classes`: a rank trains on exactly the shard samples the filter keeps, counts what it kept and dropped,
and a filter that keeps nothing stops the run in one line instead of reading shards forever.

The shards are BIOMEDICA-shaped: each sample's json carries image_primary_label, image_panel_type, article_license.
"""

from __future__ import annotations

import csv
import multiprocessing
from pathlib import Path

import pytest
from conftest import run_bmclip
from rank_inputs import rank_inputs
from run_folders import assert_refused

from biomedclip_cli.data.shard_writer import ShardWriter
from biomedclip_cli.runs.filter_counts import FILTER_COUNTS, FilterCounter, filter_totals

KEPT_LABELS = ("chest x-ray", "head ct")  # 25 of the demo's 200 training figures each
DEMO_FILTER = f'image_primary_label in ["{KEPT_LABELS[0]}", "{KEPT_LABELS[1]}"]'

# (label, licence) of the BIOMEDICA-shaped shard's samples, four of each pair
BIOMEDICA_SAMPLES = [("Clinical Imaging", "CC BY 4.0"), ("Clinical Imaging", "CC BY-NC 4.0"), ("Microscopy", "CC BY 4.0"),
                     ("Clinical Imaging", "CC0"), ("Plots and Charts", "CC BY 4.0")] * 4


def demo_captions(demo_csv: Path, labels: tuple[str, ...]) -> list[str]:
    """The captions of the demo's training figures of these classes, sorted."""
    with demo_csv.open(encoding="utf-8") as stream:
        return sorted(row["caption"] for row in csv.DictReader(stream) if row["label"] in labels)


def biomedica_shard(folder: Path, figure: Path) -> str:
    """One shard of 20 samples with BIOMEDICA's metadata (BIOMEDICA_SAMPLES), each captioned 'label | licence | index'."""
    with ShardWriter(folder) as writer:
        for index, (label, licence) in enumerate(BIOMEDICA_SAMPLES):
            metadata = {"image_primary_label": [label], "image_secondary_label": [], "image_panel_type": "single",
                        "article_license": licence}
            writer.write(f"PMC{index:04d}_fig1", figure.read_bytes(), f"{label} | {licence} | {index}", metadata)
    return str(folder / "000000.tar")


def train(*args: str) -> tuple[str, ...]:
    """bmclip train arguments for a small run of the tiny model."""
    return ("train", *args, "--model", "bmclip-tiny", "--batch-size", "16", "--precision", "fp32", "--lr", "1e-3", "--warmup", "2")


# What a rank trains on

def test_a_rank_gets_exactly_the_samples_the_filter_keeps(demo_data, tmp_path: Path):
    # One pass over both shards without replacement: an epoch of 50 kept samples is every figure of the two classes.
    seen = rank_inputs(tmp_path, "--train-data", demo_data.shards, "--where", DEMO_FILTER, "--no-dataset-resampled",
                       "--train-num-samples", "50", "--name", "kept")
    assert sorted(image["caption"] for image in seen) == demo_captions(demo_data.train_csv, KEPT_LABELS)
    counted = filter_totals(tmp_path / "logs" / "kept")
    assert counted is not None and counted.kept == 50 and 50 < counted.tested <= demo_data.train_samples, counted


def test_clinical_imaging_under_a_commercial_licence_is_one_flag_each(demo_data, tmp_path: Path):
    figure = next(demo_data.train_csv.parent.glob("images/*.jpg"))
    shard = biomedica_shard(tmp_path / "biomedica", figure)
    seen = rank_inputs(tmp_path, "--train-data", shard, "--classes", "clinical-imaging", "--where", 'article_license startswith "CC BY"',
                       "--where", 'not article_license contains "-NC"', "--no-dataset-resampled", "--train-num-samples", "4")
    expected = sorted(f"{label} | {licence} | {index}" for index, (label, licence) in enumerate(BIOMEDICA_SAMPLES)
                      if (label, licence) == ("Clinical Imaging", "CC BY 4.0"))
    assert sorted(image["caption"] for image in seen) == expected


def test_bench_data_reads_through_the_filter_and_says_what_it_kept(invoke, demo_data):
    result = invoke("bench-data", "--train-data", demo_data.shards, "--where", DEMO_FILTER, "--model", "bmclip-tiny", "--batch-size",
                    "10", "--precision", "fp32", "--workers", "0", "--train-num-samples", "50", "--no-dataset-resampled",
                    "--batches", "5", "--steps", "1")
    assert result.exit_code == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("--where kept")]
    assert line.startswith("--where kept 50 of ") and "(samples/s counts the kept ones)" in line, line


def count_in_a_child(counter: FilterCounter) -> None:
    for kept in (True, False, False):
        counter.add(kept)


def test_each_process_counts_into_a_file_of_its_own(tmp_path: Path):
    counter = FilterCounter(tmp_path / FILTER_COUNTS, "rank0")
    for kept in (True, True, False):
        counter.add(kept)
    child = multiprocessing.get_context("fork").Process(target=count_in_a_child, args=(counter,))  # as a data-loading worker is made
    child.start()
    child.join()
    assert child.exitcode == 0
    assert len(list((tmp_path / FILTER_COUNTS).glob("rank0-pid*.txt"))) == 2
    totals = filter_totals(tmp_path)
    assert totals is not None and (totals.kept, totals.dropped) == (3, 3)
    assert totals.described() == "kept 3 of 6 samples tested (50.0%), dropped 3"
    assert filter_totals(tmp_path / "no-filter") is None


# Before launch

def test_preflight_says_what_the_filter_keeps_of_the_first_samples(invoke, demo_data):
    result = invoke(*train("--train-data", demo_data.shards, "--where", DEMO_FILTER, "--train-num-samples", "64", "--dry-run"))
    assert result.exit_code == 0, result.stderr
    assert f"bmclip: --where keeps 2 of the first 5 samples of the shards ({DEMO_FILTER})" in result.stderr
    assert '--settings \'{"where":["image_primary_label in [\\"chest x-ray\\", \\"head ct\\"]"]}\'' in result.stdout


def test_a_misspelt_field_is_a_warning_with_the_field_meant(invoke, demo_data):
    result = invoke(*train("--train-data", demo_data.shards, "--where", 'image_primary_lable == "head ct"', "--train-num-samples", "64",
                           "--dry-run"))
    assert result.exit_code == 0, result.stderr
    assert ("bmclip: warning: --where: field 'image_primary_lable' is in none of the 5 samples looked at, so it reads as missing; "
            "did you mean 'image_primary_label'?") in result.stderr
    assert "--where keeps 0 of the first 5 samples" in result.stderr


def test_an_epoch_length_from_sizes_json_is_flagged_as_counting_every_sample(invoke, demo_data):
    result = invoke(*train("--train-data", demo_data.shards, "--classes", "microscopy", "--dry-run"))
    assert result.exit_code == 0, result.stderr
    assert (f"bmclip: warning: --train-num-samples: is {demo_data.train_samples:,}, every sample the shards hold by their sizes file, "
            "but with --classes an epoch counts kept samples only") in result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("--where", 'image_primary_label = "Microscopy"'), "--where: expected '==' (two characters) at column 21 of "),
    (("--where", '__import__("os").system("touch pwned")'), "--where: "),
    (("--classes", "clinical-imagin"), "--classes: unknown BIOMEDICA class 'clinical-imagin'; did you mean 'clinical-imaging'?"),
], ids=["bad syntax", "code", "unknown class"])
def test_a_bad_filter_is_one_line_and_nothing_runs(invoke, demo_data, args: tuple[str, ...], expected: str):
    assert_refused(invoke(*train("--train-data", demo_data.shards, *args, "--train-num-samples", "64")), expected)
    assert not Path("pwned").exists() and not Path("logs").exists()


def test_a_csv_has_no_metadata_to_filter_and_is_sent_to_prepare_csv(invoke, demo_data):
    assert_refused(invoke(*train("--train-data", str(demo_data.train_csv), "--where", DEMO_FILTER)),
                   "--where: tests the json metadata of webdataset shard samples, and csv data has none; filter a table once with "
                   "bmclip prepare-csv TABLE --where EXPR --out kept.csv")


# Two ranks

@pytest.mark.slow
def test_two_ranks_train_on_a_topic_and_the_summary_and_report_count_it(demo_data, tmp_path: Path):
    logs = tmp_path / "logs"
    result = run_bmclip(*train("--train-data", demo_data.shards, "--where", DEMO_FILTER, "--train-num-samples", "64", "--epochs", "1",
                               "--nproc-per-node", "2", "--workers", "1", "--logs", str(logs), "--name", "topic"))
    assert result.returncode == 0, result.stderr[-3000:]
    totals = filter_totals(logs / "topic")
    assert totals is not None and totals.kept >= 64 and totals.dropped > 0, totals
    assert f"sample filter   {totals.described()}" in result.stdout
    report = run_bmclip("report", str(logs / "topic"))
    assert report.returncode == 0, report.stderr
    page = (logs / "topic" / "report" / "index.html").read_text()
    assert f"<th>sample filter (--where, --classes)</th><td>{totals.described()}</td>" in page


@pytest.mark.slow
def test_a_filter_that_keeps_nothing_stops_the_run_in_one_line(demo_data, tmp_path: Path):
    logs = tmp_path / "logs"
    result = run_bmclip(*train("--train-data", demo_data.shards, "--where", 'image_primary_label == "PCR"', "--train-num-samples", "64",
                               "--epochs", "1", "--nproc-per-node", "2", "--workers", "1", "--logs", str(logs), "--name", "none"))
    assert result.returncode == 1
    [cause] = [line.strip() for line in result.stdout.splitlines() if line.lstrip().startswith("cause")]
    assert cause.startswith('cause           NothingKept: --where kept none of the first 10,000 samples read (where image_primary_label == '
                            '"PCR"); check the field names and values'), cause
    totals = filter_totals(logs / "none")
    assert totals is not None and totals.kept == 0 and totals.dropped >= 10_000
