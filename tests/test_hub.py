"""Streaming BIOMEDICA-layout shards from a Hugging Face hub (a local server playing huggingface.co, reached through HF_ENDPOINT).

Real huggingface_hub and webdataset code on top of the server; the token travels only in a header.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webdataset as wds
from braceexpand import braceexpand
from conftest import BIOMEDICA, REPO, run_bmclip
from hub_server import hf_url

from biomedclip_cli.hub.biomedica import SHORTCUTS, expand_shortcuts
from biomedclip_cli.hub.paths import parse_hub_url, pin_revision
from biomedclip_cli.hub.streaming import register_hf_scheme
from biomedclip_cli.problems import Problem
from biomedclip_cli.runs.folder import epoch_checkpoints

TINY = ("--model", "bmclip-tiny")
TWO_SHARDS = hf_url(BIOMEDICA, "commercial/{000000..000001}.tar")


def dry_run(invoke, *args: str):
    """`bmclip train --model bmclip-tiny --dry-run ARGS`, in-process."""
    return invoke("train", *TINY, "--dry-run", *args)


def assert_refused(result, expected: str) -> None:
    """Exit 2 with one error line that contains `expected`, no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_hf_urls_parse_like_huggingface_hub_and_carry_a_pinned_revision():
    path = parse_hub_url("hf://datasets/BIOMEDICA/biomedica_webdataset_24M@refs%2Fpr%2F3/commercial/000007.tar")
    assert (path.repo_type, path.repo_id, path.revision, path.folder, path.name) == (
        "dataset", BIOMEDICA, "refs/pr/3", "commercial", "000007.tar")
    assert parse_hub_url("hf://datasets/o/n@refs/pr/3/x.tar").revision == "refs/pr/3"
    mixed = f"{TWO_SHARDS}::shards/{{000000..000003}}.tar"
    assert pin_revision(mixed, "v1.0") == hf_url(BIOMEDICA + "@v1.0", "commercial/{000000..000001}.tar") + "::shards/{000000..000003}.tar"
    with pytest.raises(ValueError, match="is not hf://datasets/<owner>/<name>"):
        parse_hub_url("hf://datasets/BIOMEDICA")


def test_shortcuts_expand_to_the_biomedica_shard_ranges():
    commercial = list(braceexpand(expand_shortcuts("biomedica:commercial")))
    assert commercial[0] == hf_url(BIOMEDICA, "commercial/000000.tar") and commercial[-1].endswith("commercial/001861.tar")
    everything = list(braceexpand(SHORTCUTS["biomedica:all"]))
    assert len(everything) == 1862 + 560 + 115 and everything[-1] == hf_url(BIOMEDICA, "other/000114.tar")
    assert expand_shortcuts("biomedica:other::mine/{0..1}.tar") == hf_url(BIOMEDICA, "other/{000000..000114}.tar") + "::mine/{0..1}.tar"
    unknown = expand_shortcuts("biomedica:comercial")
    assert isinstance(unknown, Problem) and "unknown BIOMEDICA set 'biomedica:comercial'" in unknown.line()


def test_train_help_lists_the_shortcuts_and_revision(invoke):
    result = invoke("train", "--help-all")
    for name in ("biomedica:commercial", "biomedica:noncommercial", "biomedica:other", "biomedica:all", "--revision"):
        assert name in result.stdout


def test_dry_run_counts_samples_from_the_repos_sizes_json_and_pins_the_revision(invoke, hub):
    result = dry_run(invoke, "--train-data", TWO_SHARDS, "--revision", "main")
    assert result.exit_code == 0, result.stderr
    assert "--train-num-samples 200" in result.stdout
    assert hf_url(BIOMEDICA + "@main", "commercial/{000000..000001}.tar") in result.stdout
    assert hub.token not in result.stdout + result.stderr
    assert not [r for r in hub.requests_to("cdn") if r.authorized], "the token was sent past the hub to its CDN"


def test_biomedica_all_is_checked_with_a_few_listing_calls_not_one_request_per_shard(invoke, hub, demo_data):
    shard = (Path(demo_data.shards).parent / "000000.tar").read_bytes()
    listing = {f"{folder}/{index:06d}.tar": b"" for folder, count in (("commercial", 1862), ("noncommercial", 560), ("other", 115))
               for index in range(count)}
    hub.repos.clear()
    hub.add_files(BIOMEDICA, {**listing, "commercial/000000.tar": shard})
    result = dry_run(invoke, "--train-data", "biomedica:all")
    assert result.exit_code == 0, result.stderr
    assert "--train-num-samples 24000000" in result.stdout and "{commercial/{000000..001861}" in result.stdout
    assert len(hub.requests_to("tree")) == 4  # commercial takes two pages of 1,000
    assert len(hub.requests_to("resolve")) == 1  # the first shard's first sample


def test_missing_shards_are_named_from_the_repo_listing(invoke, hub):
    result = dry_run(invoke, "--train-data", hf_url(BIOMEDICA, "commercial/{000000..000003}.tar"))
    assert_refused(result, f"--train-data: 2 of 4 shards are missing: {hf_url(BIOMEDICA, 'commercial/000002.tar')}, ")
    assert "the hub repo's listing has no such files" in result.stderr


def test_gated_repo_without_a_token_says_accept_the_terms_and_log_in(invoke, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    assert_refused(dry_run(invoke, "--train-data", "biomedica:commercial"),
                   f"dataset '{BIOMEDICA}' is gated and no Hugging Face token was found; accept its terms at "
                   f"{hub.endpoint}/datasets/{BIOMEDICA}, then log in with `hf auth login`")


def test_token_without_access_to_the_gated_repo(invoke, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.denied_token)
    result = dry_run(invoke, "--train-data", "biomedica:commercial")
    assert_refused(result, f"your Hugging Face token has no access to the gated dataset '{BIOMEDICA}'; accept its terms")
    assert hub.denied_token not in result.output


def test_token_the_hub_rejects(invoke, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    assert_refused(dry_run(invoke, "--train-data", TWO_SHARDS), "--train-data: the Hugging Face hub rejected your token")


def test_unknown_repo_and_unknown_revision(invoke, hub):
    assert_refused(dry_run(invoke, "--train-data", hf_url("BIOMEDICA/nope", "x/{000000..000001}.tar"), "--train-num-samples", "10"),
                   "dataset 'BIOMEDICA/nope' does not exist on")
    assert_refused(dry_run(invoke, "--train-data", TWO_SHARDS, "--revision", "v9"), "--revision: revision 'v9' does not exist in dataset")


def test_revision_written_in_the_url_and_another_given(invoke, hub):
    assert_refused(dry_run(invoke, "--train-data", hf_url(BIOMEDICA + "@v1", "commercial/000000.tar"), "--revision", "v2"),
                   "--revision: 'v2' differs from the revision 'v1' written in")


def test_malformed_hf_csv_urls_are_one_line_before_launch(invoke, demo_data):
    assert_refused(dry_run(invoke, "--train-data", "hf://x.csv", "--revision", "main"),
                   "--train-data: 'hf://x.csv' is not hf://datasets/<owner>/<name>[@<revision>]/<path in the repo>; "
                   "write hf://datasets/<owner>/<name>/<path in the repo>.csv")
    assert_refused(dry_run(invoke, "--train-data", str(demo_data.train_csv), "--val-data", "hf://datasets/lab"),
                   "--val-data: 'hf://datasets/lab' is not")
    assert_refused(dry_run(invoke, "--train-data", "hf://datasets/lab/figures@v1/train.csv", "--revision", "v2"),
                   "--revision: 'v2' differs from the revision 'v1' written in")
    pinned = dry_run(invoke, "--train-data", "hf://datasets/lab/figures/train.csv", "--revision", "main")
    assert pinned.exit_code == 0, pinned.stderr
    assert "--train-data hf://datasets/lab/figures@main/train.csv" in pinned.stdout


def test_repo_without_sizes_needs_train_num_samples(invoke, hub, demo_data):
    hub.add_files("lab/figures", {"train/000000.tar": (Path(demo_data.shards).parent / "000000.tar").read_bytes()})
    pattern = hf_url("lab/figures", "train/000000.tar")
    assert_refused(dry_run(invoke, "--train-data", pattern), "--train-num-samples: is needed for webdataset shards without a sizes.json")
    assert dry_run(invoke, "--train-data", pattern, "--train-num-samples", "100").exit_code == 0


def test_first_sample_without_a_caption_is_caught_before_launch(invoke, hub, tmp_path):
    shard = tmp_path / "nocaption.tar"
    with wds.TarWriter(str(shard)) as writer:
        writer.write({"__key__": "pmc1-fig1", "jpg": b"\xff\xd8 not decoded here", "json": b"{}"})
    hub.add_files("lab/figures", {"train/000000.tar": shard.read_bytes(), "train/sizes.json": b'{"000000.tar": 1}'})
    assert_refused(dry_run(invoke, "--train-data", hf_url("lab/figures", "train/000000.tar")),
                   "('pmc1-fig1', with jpg, json) has no .txt caption")


def test_a_dropped_connection_resumes_where_it_stopped(hub):
    register_hf_scheme()
    shard = "commercial/000000.tar"
    hub.cut(shard, at=30_000)
    samples = list(wds.WebDataset(hf_url(BIOMEDICA, shard), shardshuffle=False))
    assert len(samples) == 100 and samples[-1]["txt"]
    ranges = [r.range for r in hub.requests_to("cdn")]
    assert ranges == [None, "bytes=30000-"]


def test_a_shard_that_keeps_failing_is_skipped_with_a_warning_and_the_next_one_read(hub, caplog, monkeypatch):
    from open_clip_train.data import tarfile_to_samples_nothrow

    register_hf_scheme()
    monkeypatch.setenv("BMCLIP_HUB_RETRIES", "2")
    monkeypatch.setenv("BMCLIP_HUB_BACKOFF_S", "0.01")
    broken, good = hf_url(BIOMEDICA, "commercial/000000.tar"), hf_url(BIOMEDICA, "commercial/000001.tar")
    hub.cut("commercial/000000.tar", at=30_000, times=1_000)
    with caplog.at_level(logging.WARNING):
        samples = list(tarfile_to_samples_nothrow([{"url": broken}, {"url": good}]))
    assert sum(1 for s in samples if s["__url__"] == good) == 100
    assert sum(1 for s in samples if s["__url__"] == broken) < 100
    assert f"skipping {broken}: reading it failed 3 times in a row" in caplog.text
    assert [r.range for r in hub.requests_to("cdn")][:3] == [None, "bytes=30000-", "bytes=30000-"]


def test_saved_login_is_used_and_the_token_stays_off_the_printed_command(hub, tmp_path):
    home = tmp_path / "login"
    home.mkdir()
    (home / "token").write_text(hub.token)
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "biomedclip_cli", "train", *TINY, "--train-data", TWO_SHARDS, "--dry-run"],
                            env={**env, "HF_HOME": str(home), "PYTHONPATH": str(REPO)}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "--train-num-samples 200" in result.stdout
    assert hub.token not in result.stdout + result.stderr


def _files_containing(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.slow
def test_two_ranks_train_streaming_from_the_hub_mixed_with_local_shards_and_the_token_stays_secret(hub, demo_data, tmp_path):
    for shard in ("commercial/000000.tar", "commercial/000001.tar"):
        hub.cut(shard, at=200_000)
    data = f"{TWO_SHARDS}::{demo_data.shards}"
    args = ["train", "--train-data", data, "--train-data-upsampling-factors", "1::1", "--revision", "main", *TINY,
            "--nproc-per-node", "2", "--batch-size", "16", "--epochs", "1", "--lr", "1e-3", "--warmup", "2", "--workers", "1",
            "--logs", str(tmp_path / "logs"), "--name", "hub"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "BMCLIP_HUB_BACKOFF_S": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "biomedclip_cli", *args], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    command_lines: set[str] = set()
    while process.poll() is None:
        command_lines.update(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout.splitlines())
        time.sleep(0.1)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    assert [p.name for p in epoch_checkpoints(tmp_path / "logs" / "hub")] == ["epoch_1.pt"]
    assert "train_num_samples: 400" in (tmp_path / "logs" / "hub" / "params.txt").read_text()
    rank_logs = "".join(log.read_text() for log in (tmp_path / "logs" / "hub" / "ranks").glob("rank-*.log"))
    assert any("bmclip: reading hf://" in line and "retry 1 of 5" in line for line in rank_logs.splitlines()), rank_logs[-3000:]
    assert [r for r in hub.requests_to("cdn") if r.range], "no shard was resumed with a Range request"
    assert any("biomedclip_cli.rank.worker" in line for line in command_lines), "ps never saw the ranks"
    assert not [line for line in command_lines if hub.token in line]
    assert hub.token not in stdout + stderr
    assert _files_containing(tmp_path, hub.token) == []
    dry = run_bmclip(*args, "--name", "hub-dry", "--dry-run", cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert dry.returncode == 0 and hub.token not in dry.stdout + dry.stderr


def test_a_rank_without_access_stops_at_once_with_the_clear_line(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.denied_token)
    result = subprocess.run([sys.executable, "-m", "biomedclip_cli.rank.worker", "--", "--train-data", TWO_SHARDS,
                             "--train-num-samples", "200", "--dataset-type", "webdataset", "--model", "bmclip-tiny"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"bmclip: error: --train-data: your Hugging Face token has no access to the gated dataset '{BIOMEDICA}'")
    assert hub.denied_token not in result.stderr


def test_revision_without_hub_data_is_a_warning(invoke, demo_data):
    result = dry_run(invoke, "--train-data", str(demo_data.train_csv), "--revision", "v1")
    assert result.exit_code == 0, result.stderr
    assert "bmclip: warning: --revision: has no effect: no --train-data or --val-data source is an hf:// URL" in result.stderr
    assert "@v1" not in result.stdout and "--revision" not in result.stdout


def test_prepare_csv_reads_shards_straight_from_the_hub(hub, invoke, tmp_path: Path):
    result = invoke("prepare-csv", TWO_SHARDS, "--out", "data/train.csv", "--extra-column", "image_primary_label")
    assert result.exit_code == 0, result.stderr
    rows = (Path("data") / "train.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "filepath,caption,image_primary_label" and len(rows) == 1 + 200
    first_image = Path(rows[1].split(",")[0])
    assert first_image.is_file() and first_image.read_bytes()[128:132] == b"DICM"  # the demo's first figure: a DICOM radiograph
    written = [p for p in Path.cwd().rglob("*") if p.is_file()]
    assert not any(hub.token.encode() in p.read_bytes() for p in written)
    assert hub.token not in result.stdout + result.stderr


def test_prepare_csv_asks_the_hub_for_access_and_the_listing_once(hub, invoke):
    result = invoke("prepare-csv", TWO_SHARDS, "--out", "train.csv")
    assert result.exit_code == 0, result.stderr
    assert len(hub.requests_to("auth-check")) == 1 and len(hub.requests_to("tree")) == 1


def test_prepare_csv_from_the_hub_without_a_token_says_how_to_log_in(hub, invoke, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    result = invoke("prepare-csv", TWO_SHARDS, "--out", "train.csv")
    assert_refused(result, "gated")
    assert not Path("train.csv").exists()
