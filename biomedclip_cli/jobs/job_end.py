"""The end of a SLURM job: the summary a local launch prints, with its cause line, written into the job's output file.

The job script (jobs/slurm.py) runs `python -m biomedclip_cli.jobs.job_end RUN_DIR STATUS STARTED` once srun has ended.
Every rank that failed left a copy of its error record in the run folder's ranks/ (rank/error_file.py); the cause is the
first of this start's (STARTED: the job's start, seconds since the epoch) that is not a rank losing its peer, else the first,
said in words as a local launch says it (a lost node is named).
"""

from __future__ import annotations

import sys
from pathlib import Path

from biomedclip_cli.jobs.training import print_summary
from biomedclip_cli.launch.launch_failures import PEER_LOST, LauncherFailure, cause_in_words, launcher_failure
from biomedclip_cli.problems import ProblemFound
from biomedclip_cli.rank.protocol import RANK_LOGS
from biomedclip_cli.runs.bad_samples import merge_bad_samples
from biomedclip_cli.runs.run_folder import RunFolder


def first_failure(run_dir: Path, started: float) -> LauncherFailure | None:
    """The failure that ended this start of the job: its ranks' error records since `started`, one of its own before a lost peer,
    the earliest first."""
    found: list[tuple[bool, int, int, LauncherFailure]] = []
    for path in (run_dir / RANK_LOGS).glob("failure-rank-*.json"):
        failure = launcher_failure(path)
        if failure is None or path.stat().st_mtime < started:
            continue
        stamp = failure.timestamp if failure.timestamp is not None else int(path.stat().st_mtime)
        found.append((PEER_LOST.search(failure.message) is not None, stamp, int(failure.rank or 0), failure))
    return min(found, key=lambda item: item[:3])[3] if found else None


def main(run_dir: Path, status: int, started: float) -> None:
    """Merge the ranks' lists of bad samples and print the job's summary (a line alone when the run folder has no readable
    bmclip.yaml)."""
    try:
        config = RunFolder(run_dir).config()
    except ProblemFound as found:
        print(f"bmclip: job ended with exit status {status}; {found.problem.line()}")
        return
    merge_bad_samples(run_dir)
    failure = first_failure(run_dir, started) if status != 0 else None
    cause = cause_in_words(failure, config, run_dir) if failure is not None else None
    print_summary(config, status, run_dir, cause, slurm=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
