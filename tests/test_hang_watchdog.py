"""--hang-timeout: a run whose ranks stop making steps ends in words, with every rank's Python stacks in the run folder.

The hang is real and lasts by construction: all but the first five rows of the CSV name a FIFO that nobody writes, so every batch
holds a figure whose read never returns (as from a stale network mount), and no step can finish.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import run_bmclip

pytestmark = pytest.mark.slow


def csv_that_hangs(folder: Path, demo_csv: Path) -> Path:
    """Five readable demo rows (what preflight looks at), then 60 rows whose image is a FIFO with no writer."""
    fifo = folder / "on-a-stale-mount.png"
    os.mkfifo(fifo)
    with demo_csv.open(encoding="utf-8") as stream:
        readable = list(csv.DictReader(stream))[:5]
    out = folder / "train.csv"
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=["filepath", "caption", "label"])
        writer.writeheader()
        writer.writerows(readable)
        writer.writerows({"filepath": str(fifo), "caption": f"a figure that never arrives ({index})", "label": "x"} for index in range(60))
    return out


def test_a_hung_run_stops_with_every_ranks_stacks_and_says_so(demo_data, tmp_path: Path):
    logs = tmp_path / "logs"
    result = run_bmclip("train", "--train-data", str(csv_that_hangs(tmp_path, demo_data.train_csv)), "--model", "bmclip-tiny",
                        "--batch-size", "8", "--epochs", "1", "--lr", "1e-3", "--warmup", "2", "--precision", "fp32",
                        "--nproc-per-node", "2", "--workers", "0", "--hang-timeout", "10", "--logs", str(logs), "--name", "hung")
    assert result.returncode == 1, result.stderr[-3000:]
    stacks = logs / "hung" / "stacks"
    [cause] = [line.strip() for line in result.stdout.splitlines() if line.lstrip().startswith("cause")]
    assert cause.startswith("cause           HangTimeout: no training step finished for 10 s (--hang-timeout): a rank is stuck; the Python "
                            f"stacks of every rank are in {stacks}/"), cause
    assert f"to continue     bmclip resume {logs / 'hung'}" in result.stdout
    dumps = {path.name: path.read_text() for path in stacks.iterdir()}
    assert sorted(dumps) == ["rank-0.txt", "rank-1.txt"]
    assert all(text.startswith(f"rank {name[5]} (pid ") for name, text in dumps.items())
    assert any('reader.py", line' in text and "in read_image" in text for text in dumps.values()), "a rank is stuck reading the FIFO"
    listed = run_bmclip("runs", str(logs), "--json")
    assert [(run["status"], run["detail"]) for run in json.loads(listed.stdout)] == [("failed", "hung")]
