"""What skipping unreadable samples costs: the same CSV training with and without bmclip's sample guard, and with broken rows.

Three variants, interleaved round after round, each one process on the synthetic demo figures:
  (a) open_clip_train launched by hand on the clean CSV: open_clip's own reader, no guard
  (b) bmclip train on the same CSV: every row checked, nothing to skip
  (c) bmclip train on that CSV with 1% of its rows broken (truncated, zero-byte, not an image, missing, empty caption)
Prints one table: steady samples/s (open_clip's log lines, warm-up left out; median over rounds) and its ratio to (a).
Usage: python benchmarks/bad_samples_cost.py [--rounds 3] [--per-class 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from train_throughput import open_clip_model_name, steady_rate

from biomedclip_cli.data.demo import write_demo_dataset
from biomedclip_cli.runs.folder import train_progress

REPO = Path(__file__).resolve().parent.parent
BATCH, WARMUP_STEPS = 64, 5
LABELS = {"a": "open_clip_train by hand, clean CSV", "b": "bmclip train, clean CSV", "c": "bmclip train, 1% of rows broken"}


def broken_copy(clean: Path, folder: Path) -> Path:
    """The CSV with every 100th row replaced by a broken one, cycling through five kinds of breakage."""
    rows = list(csv.DictReader(clean.open(encoding="utf-8")))
    figure = Path(rows[0]["filepath"]).read_bytes()
    kinds = [("truncated.jpg", figure[: len(figure) // 3], "x"), ("zero-byte.jpg", b"", "x"), ("text.jpg", b"not a figure", "x"),
             ("missing.jpg", None, "x"), ("fine.jpg", figure, " ")]
    for index in range(0, len(rows), 100):
        name, data, caption = kinds[(index // 100) % len(kinds)]
        path = folder / f"{index}-{name}"
        if data is not None:
            path.write_bytes(data)
        rows[index] = {**rows[index], "filepath": str(path), "caption": caption if caption.strip() == "" else rows[index]["caption"]}
    out = folder / "broken.csv"
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def flags(data: Path, model: str, logs: Path, name: str, workers: int) -> list[str]:
    return ["--train-data", str(data), "--dataset-type", "csv", "--csv-img-key", "filepath", "--csv-caption-key", "caption",
            "--csv-separator", ",", "--model", model, "--batch-size", str(BATCH), "--epochs", "1", "--lr", "1e-3", "--warmup", "2",
            "--precision", "fp32", "--workers", str(workers), "--logs", str(logs), "--name", name, "--save-frequency", "0"]


def run(variant: str, data: Path, folder: Path, name: str, workers: int) -> float:
    """Steady samples/s of one variant's run."""
    logs = folder / "logs"
    if variant == "a":
        argv = [sys.executable, "-m", "open_clip_train.main",
                *flags(data, open_clip_model_name("bmclip-tiny", folder), logs, name, workers)]
    else:
        argv = [sys.executable, "-m", "biomedclip_cli", "train", "--nproc-per-node", "1", "--max-bad-samples", "100",
                *flags(data, "bmclip-tiny", logs, name, workers)[:-2]]
    argv += ["--log-every-n-steps", "5"] if variant == "a" else ["--", "--log-every-n-steps", "5"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(argv, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return steady_rate(train_progress(logs / name), BATCH, WARMUP_STEPS)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=400, help="training figures per modality (5 modalities)")
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = write_demo_dataset(folder / "data", per_class=options.per_class, heldout_per_class=2, seed=0, shard_size=1000)
        inputs = {"a": data.train_csv, "b": data.train_csv, "c": broken_copy(data.train_csv, folder)}
        rates: dict[str, list[float]] = {variant: [] for variant in LABELS}
        for round_index in range(options.rounds):
            for variant in LABELS:
                rates[variant].append(run(variant, inputs[variant], folder, f"{variant}{round_index}", options.workers))
    base = statistics.median(rates["a"])
    print(f"bmclip-tiny, {options.per_class * 5} samples, batch {BATCH}, 1 process, {options.workers} data workers, "
          f"median of {options.rounds} rounds, {os.cpu_count()} CPU cores")
    print(f"| {'variant':<40} | samples/s | vs (a) |")
    print(f"|{'-' * 42}|-----------|--------|")
    for variant, label in LABELS.items():
        rate = statistics.median(rates[variant])
        print(f"| ({variant}) {label:<36} | {rate:9.1f} | {rate / base:6.3f} |")


if __name__ == "__main__":
    main()
