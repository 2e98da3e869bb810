"""The run folder's list of skipped samples: one line per distinct sample from every reading process, and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from biomedclip_cli.runs.bad_samples import (
    BAD_SAMPLES_FILE,
    BAD_SAMPLES_PARTS,
    BadSample,
    bad_sample_limit,
    merge_bad_samples,
    record_bad_sample,
    recorded_bad_samples,
)


def test_parts_of_every_process_merge_into_one_list_of_distinct_samples(tmp_path: Path):
    truncated = BadSample("train.csv", "figs/a.png", "OSError: image file is truncated", 0)
    record_bad_sample(tmp_path, truncated, "rank0-pid10")
    record_bad_sample(tmp_path, BadSample("train.csv", "figs/a.png", "OSError: image file is truncated", 1), "rank1-pid11")
    record_bad_sample(tmp_path, BadSample("000001.tar", "key\twith tab", "empty\ncaption", 1), "rank1-pid12")
    merged = merge_bad_samples(tmp_path)
    assert merged == [truncated, BadSample("000001.tar", "key with tab", "empty caption", 1)]
    assert (tmp_path / BAD_SAMPLES_FILE).read_text().splitlines() == [
        "source\tsample\treason\trank", "train.csv\tfigs/a.png\tOSError: image file is truncated\t0",
        "000001.tar\tkey with tab\tempty caption\t1"]
    assert not (tmp_path / BAD_SAMPLES_PARTS).exists()

    record_bad_sample(tmp_path, BadSample("train.csv", "figs/b.png", "FileNotFoundError", 0), "rank0-pid20")
    assert [sample.sample for sample in recorded_bad_samples(tmp_path)] == ["figs/a.png", "key with tab", "figs/b.png"], \
        "a resumed run adds to the list of the runs before it"


@pytest.mark.parametrize(("setting", "samples", "limit"), [(0.01, 24_000_000, 240_000), (0.01, 250, 2), (100, 5, 100), (0, 10, 0)])
def test_max_bad_samples_is_a_count_or_a_fraction_of_the_training_samples(setting: float, samples: int, limit: int):
    assert bad_sample_limit(setting, samples) == limit


def test_a_count_that_is_not_whole_is_refused_with_one_line(invoke):
    result = invoke("train", "--train-data", "train.csv", "--max-bad-samples", "2.5", "--dry-run")
    assert result.exit_code == 2
    assert "--max-bad-samples" in result.stderr and "a count (a whole number such as 100) or a fraction below 1" in result.stderr
