"""A hub that rate-limits and cuts transfers: Retry-After honoured, a shard given up once per run, its loss counted in one row.

The local server of tests/hub_server.py answers 429 with a Retry-After and cuts a shard on every
transfer; the waits are measured from the moments the server received the requests.
"""

from __future__ import annotations

import ast
import email.utils
import logging
import re
import tarfile
import time
from pathlib import Path

import pytest
import webdataset as wds
from conftest import BIOMEDICA
from hub_server import hf_url
from test_hub import TWO_SHARDS, assert_refused, dry_run

from biomedclip_cli.console import TO_CONSOLE
from biomedclip_cli.hub.backoff import JITTER, MAX_WAIT_S, retry_after_s, wait_s
from biomedclip_cli.hub.streaming import register_hf_scheme
from biomedclip_cli.rank.sample_guard import SampleGuard, listing_filter
from biomedclip_cli.runs.bad_samples import (
    BAD_SAMPLES_FILE,
    BAD_SAMPLES_PARTS,
    REST_OF_SHARD,
    given_up_folder,
    merge_bad_samples,
    recorded_bad_samples,
)

BROKEN_PATH, GOOD_PATH = "commercial/000000.tar", "commercial/000001.tar"
BROKEN, GOOD = hf_url(BIOMEDICA, BROKEN_PATH), hf_url(BIOMEDICA, GOOD_PATH)
CLASS_NAME = re.compile(r"\b_?[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")  # ShardGivenUp, _RetryableStatus, HfHubHTTPError


@pytest.fixture
def run_dir(tmp_path: Path):
    """A run folder whose bad-samples/ records the shards given up, as a rank registers it; unregistered afterwards."""
    folder = tmp_path / "run"
    register_hf_scheme(given_up_folder(folder))
    yield folder
    register_hf_scheme()


@pytest.fixture
def few_quick_retries(monkeypatch: pytest.MonkeyPatch) -> int:
    """Two retries per shard and a 10 ms first wait (a Retry-After still counts in full)."""
    monkeypatch.setenv("BMCLIP_HUB_RETRIES", "2")
    monkeypatch.setenv("BMCLIP_HUB_BACKOFF_S", "0.01")
    return 2


def fetches(hub, path: str) -> list:
    """The requests for one file's bytes (each one starts a transfer, or is answered 429)."""
    return [r for r in hub.requests_to("resolve") if r.path.endswith(path)]


def cut_in_caption(shard: Path, index: int) -> tuple[int, str]:
    """A byte in the middle of the .txt caption of the shard's sample `index`, and that sample's key."""
    with tarfile.open(shard) as tar:
        caption = [member for member in tar.getmembers() if member.name.endswith(".txt")][index]
    return caption.offset_data + caption.size // 2, caption.name.split(".")[0]


def test_retry_after_is_read_as_seconds_or_an_http_date_and_every_wait_is_capped():
    now = 1_800_000_000.0
    assert retry_after_s(429, {"Retry-After": "5"}) == 5
    assert retry_after_s(503, {"retry-after": email.utils.formatdate(now + 30, usegmt=True)}, now=now) == 30
    assert retry_after_s(429, {"Retry-After": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0
    assert retry_after_s(429, {"RateLimit": '"resolvers";r=0;t=55'}) == 55  # huggingface_hub's reading of the hub's own header
    assert retry_after_s(503, {"Retry-After": "soon"}) is None and retry_after_s(500, {}) is None
    for failures, backoff_s, asked, expected in ((1, 1.0, None, 1.0), (3, 1.0, None, 4.0), (9, 1.0, None, 16.0),
                                                 (1, 0.01, 5.0, 5.0), (1, 1.0, 3600.0, MAX_WAIT_S)):
        waits = [wait_s(failures, backoff_s, asked) for _ in range(50)]
        assert expected <= min(waits) and max(waits) <= expected * (1 + JITTER), (failures, backoff_s, asked, waits)
    assert len({wait_s(1, 1.0) for _ in range(50)}) > 1, "no jitter"


@pytest.mark.parametrize("as_date", [False, True], ids=["seconds", "http-date"])
def test_a_429_is_asked_again_only_after_its_retry_after(hub, few_quick_retries, as_date):
    register_hf_scheme()
    value = email.utils.formatdate(time.time() + 3, usegmt=True) if as_date else "1"  # a date in whole seconds: 2 to 3 s ahead
    hub.rate_limit(f"resolve/main/{BROKEN_PATH}", times=1, retry_after=value)
    samples = list(wds.WebDataset(BROKEN, shardshuffle=False))
    assert len(samples) == 100
    rate_limited, served = fetches(hub, BROKEN_PATH)
    assert served.at - rate_limited.at >= 1.0, "asked again before the Retry-After had passed (10 ms backoff)"


def test_a_shard_cut_on_every_transfer_is_given_up_once_counted_in_one_row_and_not_fetched_again(
        hub, demo_data, run_dir, few_quick_retries, caplog):
    from open_clip_train.data import tarfile_to_samples_nothrow

    cut, cut_key = cut_in_caption(Path(demo_data.shards).parent / "000000.tar", 40)
    hub.rate_limit(f"resolve/main/{BROKEN_PATH}", times=1, retry_after="1")
    hub.cut(BROKEN_PATH, at=cut, times=1_000)
    keep = listing_filter(SampleGuard(run_dir, max_bad_samples=0.5, rank=0), 200)
    passes, fetched = [], []
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # two passes over the shards, as two epochs are
            passes.append(list(tarfile_to_samples_nothrow([{"url": BROKEN}, {"url": GOOD}])))
            fetched.append(len(fetches(hub, BROKEN_PATH)))

    # a 429, waited out; then the transfer up to the cut and `retries` more that deliver nothing; none on the second pass
    assert fetched == [1 + 1 + few_quick_retries] * 2
    answered_429, first_transfer = fetches(hub, BROKEN_PATH)[:2]
    assert first_transfer.at - answered_429.at >= 1.0
    first, second = passes
    assert sum(s["__url__"] == BROKEN for s in first) == 41 and sum(s["__url__"] == BROKEN for s in second) == 0
    assert sum(s["__url__"] == GOOD for s in first) == sum(s["__url__"] == GOOD for s in second) == 100
    assert [s["__key__"] for s in first if not keep(s)] == [cut_key]  # the cut sample, which lacks its caption

    [row] = recorded_bad_samples(run_dir)  # the shard, once; no "no caption" row for the cut sample
    assert (row.source, row.sample, row.rank) == (BROKEN, REST_OF_SHARD, 0)
    assert row.reason.startswith(f"reading it failed {few_quick_retries + 1} times in a row, the last at byte {cut:,} of ")
    assert row.reason.endswith("; 40 samples read, about 60 of its 100 samples lost (its count in the sizes file)")
    shown = [r.getMessage() for r in caplog.records if getattr(r, TO_CONSOLE, False)]
    assert shown == [f"bmclip: warning: skipping {BROKEN} for the rest of the run: {row.reason}"]
    assert not CLASS_NAME.search("\n".join(r.getMessage() for r in caplog.records if r.name.startswith("biomedclip_cli")))

    merge_bad_samples(run_dir)
    assert (run_dir / BAD_SAMPLES_FILE).read_text().splitlines()[1:] == [row.line()]
    assert not (run_dir / BAD_SAMPLES_PARTS).exists()


def test_a_given_up_shard_is_not_fetched_by_the_workers_a_data_loader_starts_afresh_each_epoch(hub, run_dir, few_quick_retries):
    import torch.utils.data

    hub.cut(BROKEN_PATH, at=30_000, times=1_000)
    dataset = wds.WebDataset([BROKEN, GOOD], shardshuffle=False, handler=wds.warn_and_continue)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1)  # not persistent: new workers each epoch
    fetched, read = [], []
    for _epoch in range(3):
        read.append(sum(1 for _ in loader))
        fetched.append(len(fetches(hub, BROKEN_PATH)))
    assert fetched == [few_quick_retries + 1] * 3
    assert read[1:] == [100, 100] and read[0] > 100
    [row] = recorded_bad_samples(run_dir)
    assert row.source == BROKEN and "2 samples read, about 98 of its 100 samples lost" in row.reason


def test_preflight_says_the_hub_is_rate_limiting_when_it_keeps_answering_429(invoke, hub, monkeypatch):
    monkeypatch.setenv("BMCLIP_HUB_RETRIES", "1")
    hub.rate_limit("auth-check", times=1_000, retry_after="1")
    result = dry_run(invoke, "--train-data", TWO_SHARDS)
    assert_refused(result, f"--train-data: the hub is rate-limiting (HTTP 429) requests for dataset '{BIOMEDICA}' and still was "
                           "after 2 tries; wait a few minutes and run it again; logged-in accounts (`hf auth login`, or HF_TOKEN) "
                           "get higher limits")
    first, second = hub.requests_to("auth-check")
    assert second.at - first.at >= 1.0
    assert "webdataset .tar shard" not in result.output and not CLASS_NAME.search(result.output)


def test_preflight_reading_the_first_shard_while_the_hub_rate_limits_it(invoke, hub, monkeypatch):
    monkeypatch.setenv("BMCLIP_HUB_RETRIES", "1")
    hub.rate_limit(f"resolve/main/{BROKEN_PATH}", times=1_000, retry_after="1")
    result = dry_run(invoke, "--train-data", TWO_SHARDS)
    assert_refused(result, f"--train-data: the hub is rate-limiting (HTTP 429) the reading of {BROKEN} and still was after 2 tries; "
                           "wait a few minutes")
    first, second = fetches(hub, BROKEN_PATH)
    assert second.at - first.at >= 1.0
    assert "webdataset .tar shard" not in result.output and not CLASS_NAME.search(result.output)


def test_preflight_waits_out_a_passing_rate_limit(invoke, hub):
    hub.rate_limit("tree", times=1, retry_after="1")
    hub.rate_limit("sizes.json", times=1, retry_after="1")
    result = dry_run(invoke, "--train-data", TWO_SHARDS)
    assert result.exit_code == 0, result.stderr
    assert "--train-num-samples 200" in result.stdout
    for requests in (hub.requests_to("tree"), [r for r in hub.requests if r.path.endswith("sizes.json")]):
        first, second = requests
        assert second.at - first.at >= 1.0


def test_hub_messages_never_name_a_python_class():
    """What the hub floor says is built from words: no `type(exc).__name__` (the `_RetryableStatus` of the issue)."""
    for path in sorted((Path(__file__).parent.parent / "biomedclip_cli" / "hub").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("__name__", "__qualname__", "__class__"):
                raise AssertionError(f"{path.name}:{node.lineno} names a class in what may become a message")
