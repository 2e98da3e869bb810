"""Full fine-tuning vs locked towers vs LoRA on the BiomedCLIP-shaped model: what each trains, costs and reaches.

The model is the tiny offline BiomedCLIP stand-in of tests/biomedclip_model.py (timm ViT image tower,
BERT text tower, BiomedCLIP's open_clip_config.json keys), loaded as --model local-dir:FOLDER with
HF_HUB_OFFLINE=1. Each mode is one `bmclip train` (one process, the same data, seed, batch size,
learning rate and number of steps) with --val-zeroshot on the held-out demo figures. Prints one
table: trainable / total parameters, peak resident memory of the run's largest process (the rank), steady samples/s
(open_clip's log lines, warm-up left out) and the zero-shot top-1 after the last epoch.
Usage: python benchmarks/fine_tune_modes.py [--epochs 3] [--per-class 80] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from train_throughput import steady_rate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from biomedclip_model import install_in_hub_cache, offline_env, write_model_folder  # noqa: E402

from biomedclip_cli.data.demo import write_demo_dataset  # noqa: E402
from biomedclip_cli.runs.folder import train_progress  # noqa: E402

BATCH, WARMUP_STEPS = 32, 3
MODES = {
    "full fine-tune": [],
    "locked image tower, last text layer": ["--lock-image", "--lock-text", "--lock-text-unlocked-layers", "1"],
    "LoRA rank 8 (attention of both towers)": ["--lora-rank", "8"],
}
# Runs a command and prints, last on stderr, the peak resident memory (KiB) of its largest process: the training rank.
PEAK_OF_CHILDREN = ("import resource, subprocess, sys; status = subprocess.run(sys.argv[1:]).returncode; "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(status)")
PARAMETERS = re.compile(r"trainable parameters ([\d,]+) of ([\d,]+) \(([\d.]+)%\)")


def train(mode: list[str], model: str, data: Path, heldout: Path, logs: Path, name: str, epochs: int, lr: float,
          env: dict[str, str]) -> dict[str, object]:
    """One training run of a mode; its parameters, peak memory, steady rate and final zero-shot top-1."""
    result = subprocess.run([sys.executable, "-c", PEAK_OF_CHILDREN, sys.executable, "-m", "biomedclip_cli", "train",
                             "--train-data", str(data), "--model", model, *mode,
                             "--val-zeroshot", str(heldout), "--epochs", str(epochs), "--batch-size", str(BATCH), "--lr", str(lr),
                             "--warmup", "2", "--workers", "0", "--nproc-per-node", "1", "--logs", str(logs), "--name", name],
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2", **env},
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    found = PARAMETERS.search(result.stderr)
    assert found, result.stderr[-2000:]
    zero_shot = json.loads((logs / name / "zeroshot.jsonl").read_text().splitlines()[-1])
    return {"trainable": found[1], "total": found[2], "percent": found[3],
            "peak": f"{peak_kib / 1024:.0f} MiB",
            "rate": steady_rate(train_progress(logs / name), BATCH, WARMUP_STEPS)[0], "top1": zero_shot["top1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        install_in_hub_cache(folder / "hf-home")
        model = f"local-dir:{write_model_folder(folder / 'biomedclip')}"
        data = write_demo_dataset(folder / "data", per_class=args.per_class, heldout_per_class=20, seed=0, shard_size=1000)
        env = offline_env(folder / "hf-home")
        untrained = subprocess.run([sys.executable, "-m", "biomedclip_cli", "eval", "--model", model,
                                    "--data", str(data.heldout_csv), "--json"],
                                   env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True, check=True)
        start = json.loads(untrained.stdout)["results"][0]["zero_shot"]["top1"]
        steps = args.epochs * (data.train_samples // BATCH)
        print(f"BiomedCLIP-shaped tiny model, {data.train_samples} training figures, {len(data.labels)} classes, "
              f"{steps} steps of batch {BATCH}, lr {args.lr:g}, 1 process, {os.cpu_count()} CPU cores; "
              f"zero-shot top-1 before training: {start:.3f}")
        print(f"| mode | trainable / total parameters | peak memory | samples/s | zero-shot top-1 after {steps} steps |")
        print("|---|---:|---:|---:|---:|")
        for index, (label, mode) in enumerate(MODES.items()):
            row = train(mode, model, data.train_csv, data.heldout_csv, folder / "logs", f"mode-{index}", args.epochs, args.lr, env)
            print(f"| {label} | {row['trainable']} / {row['total']} ({row['percent']}%) | {row['peak']} | "
                  f"{row['rate']:.0f} | {row['top1']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
