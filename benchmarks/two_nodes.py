"""The same training on one node with two processes and on two nodes (loopback) with one process each.

Both runs train bmclip-tiny on the synthetic demo data with a world size of 2 (gloo on CPU); the
two-node run is two `bmclip train` processes on this machine meeting at 127.0.0.1 by static
rendezvous, sharing one logs folder, as two workstations would on a shared file system. Prints one
table: wall time of the whole command (start to both nodes' exit) and open_clip's last samples/s;
the third row gives each node one thread, since here both "machines" share the same cores.
Usage: python benchmarks/two_nodes.py [--runs 3] [--epochs 2] [--per-class 40]
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from biomedclip_cli.data.demo import write_demo_dataset
from biomedclip_cli.runs.folder import train_progress

TINY = ("--model", "bmclip-tiny", "--batch-size", "16", "--lr", "1e-3", "--warmup", "2", "--workers", "0", "--precision", "fp32")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bmclip(*args: str) -> list[str]:
    return [sys.executable, "-m", "biomedclip_cli", *args]


def one_node(train_csv: Path, logs: Path, epochs: int) -> float:
    """Seconds for the run on one node with 2 processes."""
    started = time.perf_counter()
    subprocess.run(bmclip("train", "--train-data", str(train_csv), *TINY, "--epochs", str(epochs), "--nproc-per-node", "2",
                          "--logs", str(logs), "--name", "run"), check=True, capture_output=True)
    return time.perf_counter() - started


def two_nodes(train_csv: Path, logs: Path, epochs: int, threads: str | None = None) -> float:
    """Seconds for the run on two loopback nodes of 1 process each, from starting node 0 to both nodes' exit.

    torchrun sets OMP_NUM_THREADS=1 only with several processes on a node, so each one-process node
    uses every core, as it should on a machine of its own; `threads` sets it for both nodes.
    """
    common = ("train", "--train-data", str(train_csv), *TINY, "--epochs", str(epochs), "--nproc-per-node", "1", "--nnodes", "2",
              "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--logs", str(logs), "--name", "run")
    started = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": threads} if threads else {})}
    nodes = [subprocess.Popen(bmclip(*common, "--node-rank", str(rank)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
             for rank in (0, 1)]
    if any(node.wait() != 0 for node in nodes):
        raise SystemExit("a node failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=40, help="training figures per modality (5 modalities)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = write_demo_dataset(Path(scratch) / "data", per_class=options.per_class, heldout_per_class=2, seed=0, shard_size=100)
        rows = []
        launches = (("1 node x 2 processes", one_node), ("2 nodes x 1 process (loopback)", two_nodes),
                    ("the same, OMP_NUM_THREADS=1 per node", functools.partial(two_nodes, threads="1")))
        for index_label, (label, run) in enumerate(launches):
            seconds, rates = [], []
            for index in range(options.runs):
                logs = Path(scratch) / f"launch{index_label}-{index}"
                seconds.append(run(data.train_csv, logs, options.epochs))
                rates.append(train_progress(logs / "run")[-1].samples_per_second)
            rows.append((label, statistics.median(seconds), statistics.median(rates)))
    print(f"bmclip-tiny, {options.per_class * 5} samples, {options.epochs} epochs, world size 2, "
          f"median of {options.runs}, {os.cpu_count()} CPU cores")
    print(f"| {'launch':<36} | wall s | samples/s |")
    print(f"|{'-' * 38}|--------|-----------|")
    for label, seconds, rate in rows:
        print(f"| {label:<36} | {seconds:6.1f} | {rate:9.1f} |")


if __name__ == "__main__":
    main()
