"""Throughput of `bmclip prepare-csv`: rows/s scanning without checks, images/s checking per worker count,
against a plain single-process Pillow loop (`Image.open(p).convert("RGB")`) over the same files.

Prints one table (best of --repeat interleaved rounds; each run is a full prepare-csv pass writing train.csv and rejects).
Usage: python benchmarks/prepare_throughput.py [--images 2000] [--size 512] [--scan-files 100000] [--workers 1,2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biomedclip_cli.data.prepare.image_checks import CheckSettings, available_cores
from biomedclip_cli.data.prepare.pipeline import Outputs, PrepareRequest, count_rows, open_sources, prepare
from biomedclip_cli.data.prepare.sources import ReadSettings

DISTINCT_PICTURES = 16
FILES_PER_FOLDER = 1_000


def picture(index: int, size: int) -> Image.Image:
    """A figure-like picture: smooth gradients with a little noise (JPEG decodes it like a real figure)."""
    gradient = Image.linear_gradient("L").rotate(index * 23).resize((size, size))
    radial = Image.radial_gradient("L").resize((size, size))
    noise = Image.effect_noise((size, size), 20 + index)
    return Image.merge("RGB", (gradient, radial, noise))


def write_figures(folder: Path, count: int, size: int) -> list[Path]:
    """`count` JPEG figures with .txt captions, FILES_PER_FOLDER to a subfolder."""
    encoded = []
    for index in range(DISTINCT_PICTURES):
        buffer = io.BytesIO()
        picture(index, size).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    paths = []
    for index in range(count):
        sub = folder / f"{index // FILES_PER_FOLDER:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"fig_{index:07d}.jpg"
        path.write_bytes(encoded[index % DISTINCT_PICTURES])
        path.with_suffix(".txt").write_text(f"Figure {index}: axial CT of the chest, contrast-enhanced", encoding="utf-8")
        paths.append(path)
    return paths


def best_seconds(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Shortest wall time of each run over `rounds` rounds; every round runs each once, in turn, so that
    a change in the machine's load falls on all of them alike."""
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def prepare_pass(source: Path, out: Path, checks: CheckSettings, workers: int) -> Callable[[], object]:
    """One whole prepare-csv pass as the command runs it: sources opened, rows counted (for the progress bar),
    read, checked, and train.csv and the rejects file written."""
    def run() -> object:
        outputs = Outputs(out / "train.csv", None, out / "train.rejects.csv", None, None, None)
        request = PrepareRequest((str(source),), outputs, ReadSettings(), checks, workers=workers, overwrite=True)
        sources = open_sources([str(source)], request.read)
        count_rows(sources)
        result = prepare(request, sources)
        assert result.train == result.read, result.rejected
        return result
    return run


def plain_pillow_loop(paths: list[Path]) -> Callable[[], object]:
    """The baseline: one process, `Image.open(p).convert("RGB")` for every file."""
    def run() -> object:
        for path in paths:
            Image.open(path).convert("RGB")
        return None
    return run


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2_000, help="figures decoded in the checking runs")
    parser.add_argument("--size", type=int, default=512, help="side of each figure in pixels")
    parser.add_argument("--scan-files", type=int, default=100_000, help="figures (each with a .txt) in the scanning run")
    parser.add_argument("--workers", default=f"1,{available_cores()}", help="comma-separated worker counts to check with")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all measurements; the best of each is shown")
    args = parser.parse_args()
    worker_counts = sorted({int(n) for n in args.workers.split(",")})

    with tempfile.TemporaryDirectory(prefix="bmclip-bench-") as tmp:
        root = Path(tmp)
        load = os.getloadavg()[0]
        paths = write_figures(root / "check", args.images, args.size)
        write_figures(root / "scan", args.scan_files, 16)
        runs = {"scan": prepare_pass(root / "scan", root / "out", CheckSettings(), 1), "plain": plain_pillow_loop(paths)}
        runs.update({f"workers {n}": prepare_pass(root / "check", root / "out", CheckSettings(decode=True), n) for n in worker_counts})
        seconds = best_seconds(runs, args.repeat)

        plain, first = seconds["plain"], seconds[f"workers {worker_counts[0]}"]
        rows = [(f"scan {args.scan_files:,} figures + captions, no --check-images", args.scan_files / seconds["scan"], "rows/s"),
                (f"plain Pillow open+convert loop, 1 process ({args.images:,} images)", args.images / plain, "images/s")]
        for workers in worker_counts:
            took = seconds[f"workers {workers}"]
            rows.append((f"--check-images --workers {workers}", args.images / took,
                         f"images/s ({plain / took:.2f}x plain, {first / took:.2f}x {worker_counts[0]} worker)"))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"machine: {cpu_model()}, {available_cores()} cores usable, load average {load:.2f} before and "
              f"{os.getloadavg()[0]:.2f} after; {args.size}x{args.size} JPEG figures; best of {args.repeat} interleaved rounds; "
              f"peak memory of this process {peak_mib:.0f} MiB")
        print(f"| {'measurement':<66} | {'rate':>9} | {'unit':<44} |")
        print(f"|{'-' * 68}|{'-' * 11}|{'-' * 46}|")
        for label, rate, unit in rows:
            print(f"| {label:<66} | {rate:>9,.0f} | {unit:<44} |")


if __name__ == "__main__":
    main()
