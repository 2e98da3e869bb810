"""Preflight of `--train-data biomedica:all` (2,537 hf:// shards) against a local server playing the hub.

Prints one table: the hub requests preflight makes, the median time of the hub checks alone
(in-process), and of the whole `bmclip train --dry-run` command (a fresh process each run).
The server answers at once, so on the real hub add its round trips (about 6 requests).
Usage: python benchmarks/hub_preflight.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hub_server import FakeHub, HubServer  # noqa: E402

from biomedclip_cli.data.demo import write_demo_dataset  # noqa: E402
from biomedclip_cli.data.shard_inspection import check_first_samples, inspect_shards  # noqa: E402
from biomedclip_cli.hub.biomedica import SHORTCUTS, SUBSETS  # noqa: E402

REPO_ID = "BIOMEDICA/biomedica_webdataset_24M"


def fake_biomedica(folder: Path) -> FakeHub:
    """A hub whose BIOMEDICA repo lists every shard of the three subsets; the first shard holds real samples."""
    demo = write_demo_dataset(folder, per_class=4, heldout_per_class=1, seed=0, shard_size=100)
    hub = FakeHub()
    listing = {f"{s.folder}/{i:06d}.tar": b"" for s in SUBSETS for i in range(s.shards)}
    hub.add_files(REPO_ID, {**listing, "commercial/000000.tar": (Path(demo.shards).parent / "000000.tar").read_bytes()})
    return hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch, HubServer(fake_biomedica(Path(scratch) / "demo")) as hub:
        os.environ.update(HF_ENDPOINT=hub.endpoint, HF_TOKEN=hub.token, HF_HOME=str(Path(scratch) / "hf_home"))
        checks, commands = [], []
        for _ in range(runs):
            hub.requests.clear()
            start = time.perf_counter()
            shards = inspect_shards(SHORTCUTS["biomedica:all"], None, "--train-data")
            problems = shards.problems + check_first_samples(shards, "--train-data")
            checks.append(time.perf_counter() - start)
            assert not problems and shards.count == 2537, problems
            requests = len(hub.requests)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "biomedclip_cli", "train", "--train-data", "biomedica:all", "--model", "bmclip-tiny",
                            "--dry-run"], cwd=scratch, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True)
            commands.append(time.perf_counter() - start)
    print(f"{'what':<50} {'shards':>7} {'requests':>9} {'median s':>9}")
    print(f"{'hub checks (access, listing, first sample)':<50} {2537:>7} {requests:>9} {statistics.median(checks):>9.3f}")
    print(f"{'bmclip train --train-data biomedica:all --dry-run':<50} {2537:>7} {requests:>9} {statistics.median(commands):>9.3f}")


if __name__ == "__main__":
    main()
