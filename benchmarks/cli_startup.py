"""Start-up cost of bmclip commands against open_clip's own and the CLI libraries' floor, a shell completion, preflight on a 100k-row
CSV, and list-models.

Prints one table: median wall time and peak memory (max RSS) over several runs of each command.
Usage: python benchmarks/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)\n"
    "print(json.dumps({'seconds': time.perf_counter() - start, 'kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def measure(command: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """Median seconds and median peak MiB of `command`, each run in a fresh process."""
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True, cwd=cwd)
        samples.append(json.loads(out.stdout))
    return statistics.median(s["seconds"] for s in samples), statistics.median(s["kib"] for s in samples) / 1024


def big_csv(folder: Path, rows: int) -> Path:
    """A CSV of `rows` rows whose first rows point at a real image."""
    Image.new("RGB", (8, 8)).save(folder / "figure.jpg")
    path = folder / "train.csv"
    with path.open("w", encoding="utf-8") as stream:
        stream.write("filepath,caption\n")
        stream.writelines(f"figure.jpg,Axial T2-weighted MRI of the brain number {i}\n" for i in range(rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    bmclip = [sys.executable, "-m", "biomedclip_cli"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big_csv(folder, 100_000)
        rows = [
            ("floor: import typer, rich, pydantic", [sys.executable, "-c", "import typer, rich.console, pydantic"]),
            ("bmclip --help", [*bmclip, "--help"]),
            ("bmclip --version", [*bmclip, "--version"]),
            ("bmclip train --help", [*bmclip, "train", "--help"]),
            ("Tab after bmclip train --model ViT", ["env", "_BMCLIP_COMPLETE=complete_bash", "COMP_WORDS=bmclip train --model ViT",
                                                    "COMP_CWORD=3", *bmclip]),
            ("python -m open_clip_train.main --help", [sys.executable, "-m", "open_clip_train.main", "--help"]),
            ("bmclip train --dry-run (100k-row CSV)", [*bmclip, "train", "--train-data", "train.csv", "--model", "bmclip-tiny",
                                                       "--dry-run"]),
            ("bmclip slurm-gen (100k-row CSV)", [*bmclip, "slurm-gen", "--train-data", "train.csv", "--model", "bmclip-tiny",
                                                 "--nodes", "4", "--gpus-per-node", "8"]),
            ("bmclip list-models", [*bmclip, "list-models"]),
            ("bmclip list-models --json", [*bmclip, "list-models", "--json"]),
            ("import open_clip; list_pretrained()", [sys.executable, "-c", "import open_clip; open_clip.list_pretrained()"]),
        ]
        print(f"machine: {os.cpu_count()} CPU cores; median of {runs} runs")
        print(f"| {'command':<40} | {'wall time (s)':>13} | {'peak memory (MiB)':>17} |")
        print(f"|{'-' * 42}|{'-' * 15}|{'-' * 19}|")
        for label, command in rows:
            seconds, mib = measure(command, runs, folder)
            print(f"| {label:<40} | {seconds:>13.3f} | {mib:>17.0f} |")


if __name__ == "__main__":
    main()
