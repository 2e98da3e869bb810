"""Generated job files on a real two-node SLURM cluster: CPU training jobs on one node and on two, requeue, preemption, resume.

The cluster (tests/slurm_cluster.py: two slurmd daemons on this machine) is started once for this
module and stopped at its end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_bmclip
from slurm_cluster import SlurmCluster, start_cluster, unavailable_reason
from waiting import wait_until

from biomedclip_cli.runs.folder import epoch_checkpoints

pytestmark = pytest.mark.slow

TINY_JOB = ("--model", "bmclip-tiny", "--batch-size", "16", "--lr", "1e-3", "--warmup", "2", "--workers", "0", "--gpus-per-node", "0")
ONE_NODE = ("--nodes", "1", "--nproc-per-node", "2")
TWO_NODES = ("--nodes", "2", "--nproc-per-node", "1")
JOB_TIMEOUT = 300


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    running = start_cluster(tmp_path_factory.mktemp("slurm"), nodes=2)
    try:
        yield running
    finally:
        running.stop()


def submit(cluster: SlurmCluster, folder: Path, *args: str) -> tuple[str, Path]:
    """Generate and submit a job with `bmclip slurm-gen --submit`; return its id and run folder."""
    result = run_bmclip("slurm-gen", *TINY_JOB, *args, "--submit", cwd=folder, env=cluster.env)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.isdigit(), result.stdout
    return job_id, folder / "logs" / args[args.index("--name") + 1]


def job_log(run_dir: Path, job_id: str) -> str:
    """The job's own log (%x-%j.out) in the run folder, appended to by every restart."""
    [log] = run_dir.glob(f"*-{job_id}.out")
    return log.read_text(encoding="utf-8", errors="replace")


def checkpoint_names(run_dir: Path) -> list[str]:
    return [p.name for p in epoch_checkpoints(run_dir)]


def second_epoch_started(run_dir: Path) -> bool:
    """open_clip logs 'Start epoch 1' once epoch_1.pt is saved: a requeue from then on has a checkpoint to resume from."""
    log = run_dir / "out.log"
    return log.is_file() and "Start epoch 1" in log.read_text(encoding="utf-8", errors="replace")


def resumed_from(run_dir: Path) -> list[int]:
    """The epoch of each checkpoint open_clip resumed from, in the order of the run's starts."""
    return [int(epoch) for epoch in re.findall(r"=> resuming checkpoint '.*epoch_\d+\.pt' \(epoch (\d+)\)",
                                               (run_dir / "out.log").read_text())]


def started_since_last_resume(run_dir: Path, epoch: int) -> bool:
    """open_clip has logged 'Start epoch EPOCH' since the run's latest resume (so epoch_EPOCH.pt is saved)."""
    log = run_dir / "out.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return f"Start epoch {epoch}" in text.rpartition("=> resuming checkpoint")[2]


def test_generated_job_trains_on_two_nodes_through_sbatch(cluster: SlurmCluster, demo_data, tmp_path: Path):
    # The run folder's name would run commands if any value reached the shell unquoted.
    name = "csv run 'q' $(echo x > pwned-dollar) `echo x > pwned-tick`; echo x > pwned-semicolon"
    job_id, run_dir = submit(cluster, tmp_path, *TWO_NODES, "--train-data", str(demo_data.train_csv), "--epochs", "2", "--name", name)
    state = cluster.wait_for_end(job_id, JOB_TIMEOUT)
    log = job_log(run_dir, job_id)
    assert state["JobState"] == "COMPLETED", log[-3000:]
    assert state["NumNodes"] == "2", state
    assert checkpoint_names(run_dir) == ["epoch_1.pt", "epoch_2.pt"]
    assert "world_size: 2" in (run_dir / "params.txt").read_text()
    assert "bmclip: node 1 of 2 nodes" in (run_dir / "node-1.log").read_text(), "each node leaves its own log in the run folder"
    assert f"bmclip: job {job_id} (restart 0)" in log
    assert not list(tmp_path.rglob("pwned*"))
    # The job's output file reads like a local run's console: rank 0's progress, then the summary; the rest is in ranks/.
    assert "bmclip: epoch 2/2  loss " in log and "Train Epoch:" not in log, log[-3000:]
    summary = log.rpartition("\nbmclip: training finished\n")[2]
    assert summary.rstrip().splitlines()[-1] == f"  log             {run_dir / 'out.log'}", log[-3000:]
    assert f"  run folder      {run_dir}\n" in log and "  epochs done     2 of 2\n" in log
    ranks = {path.name for path in (run_dir / "ranks").iterdir()}
    assert {"rank-0.log", "rank-1.log"} <= ranks and len([name for name in ranks if name.startswith("launcher-")]) == 2, ranks


def test_a_failed_job_ends_its_output_with_the_cause_and_the_command_that_continues_it(cluster: SlurmCluster, demo_data, tmp_path: Path):
    rows = demo_data.train_csv.read_text(encoding="utf-8").splitlines()
    broken = [f"{tmp_path / f'missing-{index}.jpg'},a figure whose file is gone,x" for index in range(6)]
    (tmp_path / "train.csv").write_text("\n".join([*rows[:41], *broken, *rows[41:]]) + "\n", encoding="utf-8")  # preflight reads the head
    job_id, run_dir = submit(cluster, tmp_path, *TWO_NODES, "--train-data", str(tmp_path / "train.csv"), "--epochs", "1",
                             "--max-bad-samples", "2", "--name", "broken")
    state = cluster.wait_for_end(job_id, JOB_TIMEOUT)
    log = job_log(run_dir, job_id)
    assert state["JobState"] == "FAILED", log[-3000:]
    assert "bmclip: training stopped (exit status " in log, log[-3000:]
    assert (run_dir / "bad-samples.tsv").is_file(), "the job's end merges the ranks' lists of bad samples"
    [cause] = [line.strip() for line in log.splitlines() if line.lstrip().startswith("cause")]
    assert cause.startswith("cause           TooManyBadSamples: 3 samples could not be read, more than --max-bad-samples 2"), cause
    assert f"to continue     bmclip resume {run_dir}" in log


def test_two_node_job_requeued_then_cancelled_and_resumed_skips_no_epoch(cluster: SlurmCluster, demo_data, tmp_path: Path):
    job_id, run_dir = submit(cluster, tmp_path, *TWO_NODES, "--train-data", demo_data.shards, "--train-num-samples", "640",
                             "--epochs", "4", "--name", "requeued")
    wait_until(lambda: second_epoch_started(run_dir), "the first checkpoint", JOB_TIMEOUT, poll=0.5)
    cluster.run("scontrol", "requeue", job_id)
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    wait_until(lambda: resumed_from(run_dir) and started_since_last_resume(run_dir, 2), "the requeued job's second checkpoint", JOB_TIMEOUT,
               poll=0.5)
    cluster.run("scancel", job_id)
    assert cluster.wait_for_end(job_id, JOB_TIMEOUT)["JobState"] == "CANCELLED"

    resumed = run_bmclip("resume", str(run_dir), cwd=tmp_path, env=cluster.env)
    assert resumed.returncode == 0, resumed.stderr
    new_job = resumed.stdout.strip()
    assert new_job.isdigit() and new_job != job_id, resumed.stdout
    state = cluster.wait_for_end(new_job, JOB_TIMEOUT)
    assert state["JobState"] == "COMPLETED", job_log(run_dir, new_job)[-3000:]
    assert f"bmclip: job {job_id} (restart 1)" in job_log(run_dir, job_id)
    assert checkpoint_names(run_dir) == ["epoch_1.pt", "epoch_2.pt", "epoch_3.pt", "epoch_4.pt"]
    starts = resumed_from(run_dir)
    assert len(starts) == 2 and starts[0] >= 1 and starts[1] >= 2, starts
    assert_each_start_continues_where_its_checkpoint_ends(run_dir)


def assert_each_start_continues_where_its_checkpoint_ends(run_dir: Path) -> None:
    """After every resume, the first epoch trained is the checkpoint's epoch: none skipped, none trained twice from scratch."""
    text = (run_dir / "out.log").read_text(encoding="utf-8")
    for resumed in re.finditer(r"=> resuming checkpoint '.*epoch_(\d+)\.pt' \(epoch (\d+)\)", text):
        started = re.search(r"Start epoch (\d+)", text[resumed.end():])
        assert started and started.group(1) == resumed.group(2) == resumed.group(1), text[resumed.start():resumed.start() + 2000]


def assert_resumed(run_dir: Path) -> None:
    """open_clip's log: the second start loaded a checkpoint and trained on from its epoch, not from epoch 0."""
    text = (run_dir / "out.log").read_text(encoding="utf-8")
    resumed = re.search(r"=> resuming checkpoint '.*epoch_(\d+)\.pt' \(epoch (\d+)\)", text)
    assert resumed, text[-3000:]
    after = text[resumed.end():]
    started = [int(epoch) for epoch in re.findall(r"Start epoch (\d+)", after)]
    assert started and started[0] == int(resumed.group(2)) >= 1 and started[-1] == 2, started
    assert f"bmclip: continuing at epoch {started[0]}, step" in after


def test_time_limit_signal_makes_the_job_requeue_itself_within_the_bound(cluster: SlurmCluster, demo_data, tmp_path: Path):
    job_id, run_dir = submit(cluster, tmp_path, *ONE_NODE, "--train-data", demo_data.shards, "--train-num-samples", "640", "--epochs", "3",
                             "--name", "preempted", "--max-restarts", "1")
    wait_until(lambda: second_epoch_started(run_dir), "the first checkpoint", JOB_TIMEOUT, poll=0.5)
    # What SLURM sends --signal-before seconds ahead of the time limit: USR1 to the batch shell only.
    cluster.run("scancel", "--batch", "--signal=USR1", job_id)
    wait_until(lambda: f"bmclip: job {job_id} (restart 1)" in job_log(run_dir, job_id), "the requeued job to start", JOB_TIMEOUT, poll=0.5)
    cluster.run("scancel", "--batch", "--signal=USR1", job_id)
    state = cluster.wait_for_end(job_id, JOB_TIMEOUT)
    log = job_log(run_dir, job_id)
    assert (state["JobState"], state["Restarts"]) == ("COMPLETED", "1"), log[-3000:]
    assert f"bmclip: time limit near: requeueing job {job_id} (restart 1 of 1)" in log
    assert f"bmclip: time limit near: not requeueing job {job_id} (1 restarts done)" in log
    assert checkpoint_names(run_dir)[-1] == "epoch_3.pt"
    assert "world_size: 2" in (run_dir / "params.txt").read_text() and not (run_dir / "node-1.log").exists(), "2 ranks on 1 node"
    assert_resumed(run_dir)
