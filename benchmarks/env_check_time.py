"""How long `bmclip env-check` takes: on the base install (no torch) and with torch installed.

Prints one table: median and slowest wall time over several runs, each a fresh process. nvidia-smi is a
fake replaying a recorded machine (tests/fixtures/nvidia_smi), so its own start-up (tens of ms for the fake;
on real drivers often 0.1-1 s) is part of the number.
Usage: python benchmarks/env_check_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from machines import base_install_command, machine, make_base_site  # noqa: E402  (the test helpers build the base install and the fake nvidia-smi)


def seconds(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall time of each of `runs` runs of `command`."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        site = make_base_site(folder / "site-packages")
        base = base_install_command(site, "env-check", "--json")
        full = [sys.executable, "-m", "biomedclip_cli", "env-check", "--json"]
        cases = [
            ("base install, no nvidia-smi", base, machine(folder / "none", None)),
            ("base install, 8 GPUs (fake nvidia-smi)", base, machine(folder / "eight", "8-gpus-550-cuda12.4")),
            ("torch installed, 8 GPUs (fake nvidia-smi)", full,
             {**machine(folder / "eight", "8-gpus-550-cuda12.4"), "PYTHONPATH": str(REPO)}),
        ]
        print(f"bmclip env-check wall time, {runs} runs each, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
        print(f"{'case':<44} {'median s':>9} {'slowest s':>10}")
        for name, command, env in cases:
            samples = seconds(command, env, runs)
            print(f"{name:<44} {statistics.median(samples):>9.2f} {max(samples):>10.2f}")


if __name__ == "__main__":
    main()
