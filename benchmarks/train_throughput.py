"""Training throughput: open_clip_train launched by hand, `bmclip train`, and `bmclip train --preset fast`.

Runs the same short training (open_clip's synthetic data, the seed recipe's flags) three ways and
prints one table:
  (a) python -m torch.distributed.run ... -m open_clip_train.main -- <seed flags>
  (b) bmclip train <seed flags>
  (c) bmclip train --preset fast <seed flags without --precision, so the preset chooses it>
Columns: steady samples/s (from open_clip's own log lines, warm-up steps left out), its ratio to (a),
time to first step (launch to open_clip's first progress line), peak memory (GPU: nvidia-smi's
memory.used; CPU: max RSS of the largest process), and the share of step time spent waiting for data.
Variants run interleaved, round after round; the table shows the median over rounds (and the best
round's samples/s, the least disturbed one on a shared machine).

Usage:
  python benchmarks/train_throughput.py                # CPU: bmclip-tiny, batch 64, 1 process, 60 steps
  python benchmarks/train_throughput.py --gpu          # GPUs: ViT-B-32, batch 256, one process per GPU, 100 steps (20 untimed)
  python benchmarks/train_throughput.py --gpu --rounds 1 --steps 100 --model ViT-B-16
On CPU, (a) runs one process: open_clip_train 3.3 cannot run several CPU processes without bmclip's
DistributedDataParallel shim (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from biomedclip_cli.checks.hardware import visible_gpus  # noqa: E402
from biomedclip_cli.models.configs import FOLDER as BMCLIP_MODEL_CONFIGS  # noqa: E402
from biomedclip_cli.runs.folder import LOG_FILE, TRAIN_LINE, TrainProgress, train_progress  # noqa: E402

POLL_SECONDS = 0.05
GPU_POLL_SECONDS = 0.5
VARIANTS = ("a", "b", "c")
LABELS = {
    "a": "(a) torch.distributed.run -m open_clip_train.main",
    "b": "(b) bmclip train, same flags",
    "c": "(c) bmclip train --preset fast",
}


@dataclass
class Measurement:
    """One run of one variant."""

    samples_per_second: float
    first_step_seconds: float
    peak_mib: float
    data_wait: float
    wall_seconds: float


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="GPU defaults (ViT-B-32, batch 256, 100 steps, amp, one process per GPU)")
    parser.add_argument("--model", help="open_clip model name (default: bmclip-tiny on CPU, ViT-B-32 with --gpu)")
    parser.add_argument("--batch-size", type=int, help="per process (default: 64 on CPU, 256 with --gpu)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: 60 on CPU, 100 with --gpu)")
    parser.add_argument("--nproc", type=int, help="processes (default: 1 on CPU, one per visible GPU with --gpu)")
    parser.add_argument("--workers", type=int, help="data-loading workers per process (default: 1 on CPU, 8 with --gpu)")
    parser.add_argument("--log-every", type=int,
                        help="open_clip's --log-every-n-steps, one timing window (default: 5 on CPU, 10 with --gpu)")
    parser.add_argument("--warmup-steps", type=int,
                        help="steps left out of samples/s: start-up, compilation (default: 10 on CPU, 20 with --gpu)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of (a), (b), (c); median reported")
    parser.add_argument("--report-to", default="tensorboard", help="the seed's logger; 'none' to leave it out")
    parser.add_argument("--keep", type=Path, help="keep the run folders here instead of a temporary folder")
    options = parser.parse_args()
    gpu = options.gpu
    options.model = options.model or ("ViT-B-32" if gpu else "bmclip-tiny")
    options.batch_size = options.batch_size or (256 if gpu else 64)
    options.steps = options.steps or (100 if gpu else 60)
    options.nproc = options.nproc or (max(len(visible_gpus()), 1) if gpu else 1)
    options.workers = options.workers if options.workers is not None else (8 if gpu else 1)
    options.log_every = options.log_every or (10 if gpu else 5)
    options.warmup_steps = options.warmup_steps if options.warmup_steps is not None else (20 if gpu else 10)
    options.precision = "amp" if gpu else "fp32"
    return options


def seed_flags(options: argparse.Namespace, model: str, logs: Path, name: str, precision: bool = True) -> list[str]:
    """The seed recipe's flags (section 5.A) on synthetic data for `steps` steps; `precision=False` leaves --precision out."""
    samples = options.steps * options.batch_size * options.nproc
    flags = ["--dataset-type", "synthetic", "--train-num-samples", str(samples), "--model", model,
             "--batch-size", str(options.batch_size), "--workers", str(options.workers), "--epochs", "1",
             "--warmup", "1000", "--lr", "5e-6", "--wd", "0.1", "--save-frequency", "1", "--seed", "0",
             "--logs", str(logs), "--name", name]
    if precision:
        flags += ["--precision", options.precision]
    if options.report_to != "none":
        flags += ["--report-to", options.report_to]
    return flags


def open_clip_model_name(model: str, folder: Path) -> str:
    """The --model plain open_clip understands: bmclip's own configs (bmclip-tiny) go through a local-dir: folder."""
    config = BMCLIP_MODEL_CONFIGS / f"{model}.json"
    if not config.is_file():
        return model
    local = folder / "model-configs" / model
    local.mkdir(parents=True, exist_ok=True)
    (local / "open_clip_config.json").write_text(json.dumps({"model_cfg": json.loads(config.read_text())}))
    return f"local-dir:{local}"


def command(variant: str, options: argparse.Namespace, folder: Path, name: str) -> list[str]:
    """argv of one variant."""
    logs = folder / "logs"
    log_every = ["--log-every-n-steps", str(options.log_every)]
    if variant == "a":
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={options.nproc}", "--standalone",
                "-m", "open_clip_train.main", "--", *seed_flags(options, open_clip_model_name(options.model, folder), logs, name),
                *log_every]
    bmclip = [sys.executable, "-m", "biomedclip_cli", "train", "--nproc-per-node", str(options.nproc)]
    if variant == "b":
        return [*bmclip, *seed_flags(options, options.model, logs, name), "--", *log_every]
    return [*bmclip, "--preset", "fast", *seed_flags(options, options.model, logs, name, precision=False), "--", *log_every]


def gpu_memory_used_mib() -> float:
    """The most memory in use on any GPU right now (nvidia-smi), 0 without GPUs."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0.0
    values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
    return max(values, default=0.0)


def steady_rate(progress: list[TrainProgress], global_batch: int, warmup_steps: int) -> tuple[float, float]:
    """Samples/s and data-wait share over the logged windows that start after `warmup_steps`.

    Each open_clip progress line holds the mean step time since the previous line, so a window's time is
    its steps times that mean; windows after the warm-up are summed.
    """
    samples = seconds = data_seconds = 0.0
    previous = 0
    for line in progress:
        steps = (line.samples_seen - previous) // global_batch
        if previous // global_batch >= warmup_steps:
            samples += steps * global_batch
            seconds += steps * line.batch_seconds
            data_seconds += steps * line.data_seconds
        previous = line.samples_seen
    if seconds == 0:
        raise RuntimeError(f"no progress line after {warmup_steps} warm-up steps: run more --steps or lower --warmup-steps")
    return samples / seconds, data_seconds / seconds


def run_once(variant: str, options: argparse.Namespace, folder: Path, name: str) -> Measurement:
    """Launch one variant, watch its log for the first step, wait for it, and read its timings."""
    run_dir = folder / "logs" / name
    argv = command(variant, options, folder, name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    output = (folder / f"{name}.output").open("w")
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT)
    first_step: list[float] = []
    peak_gpu = [0.0]
    done = threading.Event()

    def watch() -> None:
        last_gpu_poll = 0.0
        while not done.is_set():
            now = time.perf_counter()
            log = run_dir / LOG_FILE
            if not first_step and log.is_file() and TRAIN_LINE.search(log.read_text(errors="replace")):
                first_step.append(now - start)
            if options.gpu and now - last_gpu_poll >= GPU_POLL_SECONDS:
                peak_gpu[0] = max(peak_gpu[0], gpu_memory_used_mib())
                last_gpu_poll = now
            time.sleep(POLL_SECONDS)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    output.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = (folder / f"{name}.output").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{LABELS[variant]} exited with {process.returncode}:\n{tail}")
    rate, data_wait = steady_rate(train_progress(run_dir), options.batch_size * options.nproc, options.warmup_steps)
    peak = peak_gpu[0] if options.gpu else usage.ru_maxrss / 1024
    return Measurement(rate, first_step[0] if first_step else float("nan"), peak, data_wait, wall)


def machine() -> str:
    """CPU model, core count, load and (where present) GPU names, for the table's caption."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    text = f"{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip().splitlines()
    except OSError:
        gpus = []
    return text + (f"; GPUs: {', '.join(gpus)}" if gpus else "; no GPU")


def versions() -> str:
    from importlib.metadata import version

    return f"torch {version('torch')}, open_clip_torch {version('open_clip_torch')}, Python {platform.python_version()}"


def main() -> None:
    options = parse_options()
    results: dict[str, list[Measurement]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = options.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"machine: {machine()}", flush=True)
        for round_number in range(1, options.rounds + 1):
            for variant in VARIANTS:
                name = f"{variant}-{time.strftime('%H%M%S')}-r{round_number}"
                measured = run_once(variant, options, folder, name)
                results[variant].append(measured)
                print(f"  round {round_number} {LABELS[variant]}: {measured.samples_per_second:,.1f} samples/s, "
                      f"first step after {measured.first_step_seconds:.2f} s, wall {measured.wall_seconds:.1f} s", flush=True)
    print_table(options, results)


def print_table(options: argparse.Namespace, results: dict[str, list[Measurement]]) -> None:
    """One markdown table of medians over rounds."""
    def median(variant: str, field: str) -> float:
        return statistics.median(getattr(m, field) for m in results[variant])

    memory = "peak GPU memory (MiB)" if options.gpu else "peak RSS (MiB)"
    print(f"\n{options.model}, batch {options.batch_size} x {options.nproc} process(es), {options.steps} steps "
          f"(first {options.warmup_steps} not timed), {options.workers} workers, seed precision {options.precision}; "
          f"median of {options.rounds} round(s); {versions()}; load average now {os.getloadavg()[0]:.1f}")
    print(f"| {'variant':<50} | samples/s | vs (a) | best round | time to first step | {memory} | data wait |")
    print(f"|{'-' * 52}|----------:|-------:|-----------:|-------------------:|{'-' * (len(memory) + 1)}:|----------:|")
    base = median("a", "samples_per_second")
    for variant in VARIANTS:
        rate = median(variant, "samples_per_second")
        best = max(m.samples_per_second for m in results[variant])
        print(f"| {LABELS[variant]:<50} | {rate:>9,.1f} | {rate / base:>5.2f}x | {best:>10,.1f} "
              f"| {median(variant, 'first_step_seconds'):>16.2f} s | {median(variant, 'peak_mib'):>{len(memory)},.0f} "
              f"| {median(variant, 'data_wait'):>8.0%} |")


if __name__ == "__main__":
    main()
