"""Forgetting and WiSE-FT on CPU: fine-tune a "pretrained" tiny CLIP on new classes, then mix its start back in.

1. The "pretrained" model: bmclip-tiny trained from scratch on the first half of the demo's classes (old).
2. Fine-tuning: that model trained further on the other half (new), `--pretrained` its last checkpoint.
3. `bmclip eval --wise-ft` scores (1-α)·start + α·fine-tuned on held-out figures of both halves, and the soup of the
   fine-tuned run's last three checkpoints beside them.
Prints the table (zero-shot top-1 among each half's classes) and writes a plot (report-style PNG).
Usage: python benchmarks/forgetting.py [--out docs/images/forgetting.png] [--per-class 60] [--epochs 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ALPHAS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"
TRAIN = ("--model", "bmclip-tiny", "--batch-size", "32", "--lr", "2e-3", "--warmup", "5", "--precision", "fp32",
         "--nproc-per-node", "1", "--workers", "0", "--report-to", "none")


def bmclip(*args: str, cwd: Path) -> str:
    """Run bmclip as a user would; its stdout (stops the benchmark with the stderr when it fails)."""
    result = subprocess.run([sys.executable, "-m", "biomedclip_cli", *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        sys.exit(f"bmclip {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def split(source: Path, labels: list[str], out: Path) -> Path:
    """The rows of `source` whose label is one of `labels`."""
    with source.open(encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if row["label"] in labels]
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def plot(rows: list[dict], alphas: list[float], soup: dict[str, float], out: Path) -> None:
    """Top-1 against α for each half (and their mean), the soup as markers at the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8.0, 4.5), dpi=100)
    for row in rows:
        axes.plot(alphas, row["scores"][:len(alphas)], marker="o", label=row["label"])
    for label, value in soup.items():
        axes.scatter([1.05], [value], marker="*", s=120, label=f"soup, {label}")
    axes.set_xlabel("α  (0: the pretrained start, 1: the fine-tuned run)")
    axes.set_ylabel("zero-shot top-1")
    axes.set_title("WiSE-FT of the tiny model fine-tuned on new classes: zero-shot top-1 against α")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "forgetting.png")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bmclip-forgetting-") as scratch:
        folder = Path(scratch)
        bmclip("demo-data", "data", "--per-class", str(args.per_class), cwd=folder)
        with (folder / "data" / "train.csv").open(encoding="utf-8") as stream:
            labels = sorted({row["label"] for row in csv.DictReader(stream)})
        old, new = labels[: len(labels) // 2], labels[len(labels) // 2:]
        data = folder / "data"
        sets = {name: (split(data / "train.csv", half, folder / f"{name}-train.csv"),
                       split(data / "heldout.csv", half, folder / f"{name}.csv")) for name, half in (("old", old), ("new", new))}
        bmclip("train", "--train-data", str(sets["old"][0]), *TRAIN, "--epochs", str(args.epochs), "--name", "pretrained", cwd=folder)
        start = folder / "logs" / "pretrained" / "checkpoints" / f"epoch_{args.epochs}.pt"
        bmclip("train", "--train-data", str(sets["new"][0]), *TRAIN, "--epochs", str(args.epochs), "--pretrained", str(start),
               "--name", "fine-tuned", cwd=folder)
        scored = json.loads(bmclip("eval", "--checkpoint", "logs/fine-tuned", "--wise-ft", ALPHAS, "--average", "3",
                                   "--data", str(sets["old"][1]), "--data", str(sets["new"][1]), "--json", cwd=folder))
    alphas = [float(value) for value in ALPHAS.split(",")]
    names = scored["weights"]
    rows = [{"label": {"mean": "mean"}.get(row["data"], "old classes" if "old" in Path(row["data"]).name else "new classes"),
             "scores": row["scores"], "best": row["best"]} for row in scored["rows"]]
    print(f"bmclip-tiny, {args.per_class} figures per class, {args.epochs} epochs each; {platform.machine()}, {os.cpu_count()} cores, "
          f"{time.perf_counter() - started:.0f} s in all")
    print(f"old classes: {', '.join(old)}; new classes: {', '.join(new)}")
    print("| held-out set | " + " | ".join(names) + " | best α |")
    print("|---|" + "---:|" * len(names) + "---|")
    for row in rows:
        print(f"| {row['label']} | " + " | ".join(f"{value:.3f}" for value in row["scores"]) + f" | {row['best']} |")
    soup = {row["label"]: row["scores"][len(alphas)] for row in rows if len(row["scores"]) > len(alphas)}
    plot(rows, alphas, soup, args.out)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
