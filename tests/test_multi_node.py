"""Two nodes on loopback: two `bmclip train` processes, each with its own torchrun agent, sharing one logs folder.

Each node process is what a user starts on each machine; both run here, meeting at 127.0.0.1.
A node started "first" has printed its launch line (it is waiting at the rendezvous) before the
other is started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO
from waiting import wait_until

from biomedclip_cli.runs.folder import LAUNCH_FILE, epoch_checkpoints, read_launch_record

pytestmark = pytest.mark.slow

TINY_NODE = ("--model", "bmclip-tiny", "--nproc-per-node", "1", "--nnodes", "2", "--batch-size", "16", "--lr", "1e-3",
             "--warmup", "2", "--workers", "0", "--precision", "fp32")
NODE_TIMEOUT = 240
LAUNCHED = "bmclip: launching"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Node:
    """One node's bmclip process, its output captured in files."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    def wait_for_line(self, text: str) -> None:
        """Return once the process has printed `text` on stderr (fail if it ends or NODE_TIMEOUT passes first)."""

        def printed() -> bool:
            if text in self.stderr.read_text(encoding="utf-8", errors="replace"):
                return True
            assert self.process.poll() is None, f"the node ended before printing {text!r}:\n{self.errors()}"
            return False

        wait_until(printed, f"the node to print {text!r}", NODE_TIMEOUT, poll=0.2)

    def finish(self) -> int:
        """Wait for the node to end; its exit status."""
        try:
            return self.process.wait(timeout=NODE_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def errors(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")[-3000:]


def start_node(folder: Path, label: str, *args: str, env: dict[str, str] | None = None) -> Node:
    """Start `bmclip ARGS` from `folder`, as a user does on one machine, in a session of its own (a machine's processes)."""
    stdout, stderr = folder / f"{label}.stdout", folder / f"{label}.stderr"
    # torchrun leaves a one-process node all the machine's threads; here both "machines" share its cores.
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "biomedclip_cli", *args], cwd=folder, stdout=out, stderr=err,
                                   env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})},
                                   start_new_session=True)
    return Node(process, stdout, stderr)


def run_two_nodes(folder: Path, first: tuple[str, ...], second: tuple[str, ...], env: dict[str, str] | None = None) -> tuple[Node, Node]:
    """Start the first node, wait until it is waiting for its peer, start the second; both once they have ended."""
    nodes = [start_node(folder, "first", *first, env=env)]
    try:
        nodes[0].wait_for_line(LAUNCHED)
        nodes.append(start_node(folder, "second", *second, env=env))
        for node in nodes:
            assert node.finish() == 0, node.errors()
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.kill()
    return nodes[0], nodes[1]


def checkpoint_names(run_dir: Path) -> list[str]:
    return [p.name for p in epoch_checkpoints(run_dir)]


def assert_one_shared_run_folder(logs: Path, name: str, epochs: int) -> Path:
    """One run folder, node 0's state in it (config, launch record, every epoch's checkpoint) and node 1's own log."""
    assert [p.name for p in logs.iterdir()] == [name]
    run_dir = logs / name
    assert checkpoint_names(run_dir) == [f"epoch_{k}.pt" for k in range(1, epochs + 1)]
    assert {"bmclip.yaml", LAUNCH_FILE, "out.log", "node-1.log"} <= {p.name for p in run_dir.iterdir()}
    assert "world_size: 2" in (run_dir / "params.txt").read_text()
    assert "bmclip: node 1 of 2 nodes" in (run_dir / "node-1.log").read_text()
    record = read_launch_record(run_dir)
    assert record is not None and (record.exit_status, record.nodes) == (0, 2)
    return run_dir


def assert_honest_summaries(nodes: tuple[Node, Node], epochs: int) -> None:
    """Node 0 summarises the run; the other node says node 0 owns it and quotes only what node 0 wrote."""
    outputs = sorted((node.output() for node in nodes), key=lambda text: "node 0 owns" in text)
    owner, other = outputs
    assert owner.startswith("bmclip: training finished\n") and f"epochs done     {epochs} of {epochs}\n" in owner, owner
    assert "training finished on this node; node 0 owns the run's state" in other, other
    assert f"epochs done     {epochs} of {epochs} (as node 0 wrote them)" in other, other


def test_two_nodes_by_node_rank_share_one_run_folder_and_resume_on_two_nodes(demo_data, tmp_path: Path):
    port = free_port()
    train = ("train", "--train-data", str(demo_data.train_csv), *TINY_NODE, "--epochs", "2", "--logs", "logs", "--name", "static",
             "--rdzv-endpoint", f"127.0.0.1:{port}")
    nodes = run_two_nodes(tmp_path, (*train, "--node-rank", "0"), (*train, "--node-rank", "1"))
    run_dir = assert_one_shared_run_folder(tmp_path / "logs", "static", epochs=2)
    assert_honest_summaries(nodes, epochs=2)

    again = subprocess.run([sys.executable, "-m", "biomedclip_cli", *train, "--node-rank", "0"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=NODE_TIMEOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert again.returncode == 2 and "--name: run folder 'logs/static' already exists" in again.stderr, "another job is still refused"

    endpoint = f"127.0.0.1:{free_port()}"
    resume = ("resume", "logs/static", "--epochs", "3", "--rdzv-endpoint", endpoint)
    nodes = run_two_nodes(tmp_path, (*resume, "--node-rank", "0"), (*resume, "--node-rank", "1"))
    assert_one_shared_run_folder(tmp_path / "logs", "static", epochs=3)
    assert_honest_summaries(nodes, epochs=3)
    assert "bmclip: continuing at epoch 2, step" in (run_dir / "out.log").read_text()


def test_two_nodes_by_c10d_rendezvous_with_the_second_node_started_first(demo_data, tmp_path: Path):
    train = ("train", "--train-data", demo_data.shards, "--train-num-samples", "160", *TINY_NODE, "--epochs", "2",
             "--logs", "logs", "--name", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}")
    nodes = run_two_nodes(tmp_path, train, train)
    assert_one_shared_run_folder(tmp_path / "logs", "c10d", epochs=2)
    assert_honest_summaries(nodes, epochs=2)


def test_a_node_killed_mid_run_is_named_and_its_log_kept_when_both_nodes_resume(demo_data, tmp_path: Path):
    temporary = tmp_path / "tmp"  # both "machines'" temporary folder, where each launch keeps its launcher log until it ends
    temporary.mkdir()
    env = {"TMPDIR": str(temporary)}
    train = ("train", "--train-data", str(demo_data.train_csv), *TINY_NODE, "--epochs", "1000", "--logs", "logs", "--name", "lost",
             "--rdzv-endpoint", f"127.0.0.1:{free_port()}")
    node0 = start_node(tmp_path, "first", *train, "--node-rank", "0", env=env)
    node0.wait_for_line(LAUNCHED)
    node1 = start_node(tmp_path, "second", *train, "--node-rank", "1", env=env)
    run_dir = tmp_path / "logs" / "lost"
    try:
        wait_until(lambda: bool(epoch_checkpoints(run_dir)), "the first checkpoint", NODE_TIMEOUT, poll=0.2)
        os.killpg(node1.process.pid, signal.SIGKILL)  # the machine of node 1 is gone: bmclip, torchrun and its rank at once
        assert node0.finish() == 1, node0.errors()
    finally:
        for node in (node0, node1):
            if node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGKILL)
    [cause] = [line.strip() for line in node0.output().splitlines() if line.lstrip().startswith("cause")]
    assert cause.startswith("cause           node 1 (rank 1) stopped without an error of its own: killed, out of memory, or its machine "
                            "lost; rank 0 lost its connection to it ("), cause
    assert "to continue     bmclip resume logs/lost --node-rank K, on each node K = 0..1" in node0.output()
    assert len(list(temporary.glob("bmclip-launch-*"))) == 1, "node 1's launch was killed before it could keep its log"

    done = len(epoch_checkpoints(run_dir))
    resume = ("resume", "logs/lost", "--epochs", str(done + 1), "--rdzv-endpoint", f"127.0.0.1:{free_port()}")
    nodes = run_two_nodes(tmp_path, (*resume, "--node-rank", "0"), (*resume, "--node-rank", "1"), env=env)
    assert checkpoint_names(run_dir) == [f"epoch_{k}.pt" for k in range(1, done + 2)]
    left = [path.name for path in temporary.iterdir() if not path.name.startswith("torchinductor_")]  # torch.compile's cache stays
    assert not left, "no launch leaves a temporary folder behind, not even torchrun's own"
    killed_log = run_dir / "ranks" / f"launcher-{socket.gethostname()}-{node1.process.pid}.log"
    said = "".join(node.stderr.read_text() for node in nodes)
    assert killed_log.is_file()
    assert f"kept the launcher log of an earlier launch that was killed: {killed_log}" in said


@pytest.mark.parametrize(("style", "expected"), [
    (("--node-rank", "0"), "1 of 2 nodes joined at 127.0.0.1:{port} within --rdzv-timeout 5 s"),
    (("--node-rank", "1"), "node 0 did not answer at 127.0.0.1:{port} within --rdzv-timeout 5 s, so 1 of 2 nodes (this one) had joined"),
    ((), "1 of 2 nodes joined the rendezvous 'alone' at 127.0.0.1:{port} within --rdzv-timeout 5 s"),
], ids=["static-node-0", "static-node-1", "c10d"])
def test_a_node_whose_peer_never_arrives_gives_up_with_one_line(demo_data, tmp_path: Path, style: tuple[str, ...], expected: str):
    port = free_port()
    node = start_node(tmp_path, "alone", "train", "--train-data", str(demo_data.train_csv), *TINY_NODE, "--logs", "logs",
                      "--name", "alone", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-timeout", "5", *style)
    assert node.finish() == 1, node.errors()
    last = node.errors().strip().splitlines()[-1]
    assert last.startswith(f"bmclip: error: --rdzv-endpoint: {expected.format(port=port)}; start the same command on every node"), last
    assert node.output() == "", "no summary of a run that never started"
    assert not (tmp_path / "logs" / "alone").exists(), "nothing is written before every node has arrived"
