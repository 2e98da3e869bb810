"""The steps from a config to a finished training run, shared by train, resume, slurm-gen and bench-data.

Load the config (YAML file and typed options), preflight it for this machine, build the launch
command, stop early when the run is already finished, launch it and print its summary. A run
launched from another folder (resume) is checked and recorded as seen from that folder, since its
relative paths mean what they mean there; the current folder is the same afterwards.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from biomedclip_cli import console
from biomedclip_cli.checks.hardware import gpus_support_bf16, installed_gpus, run_gpus
from biomedclip_cli.checks.preflight import LaunchSite, Preflight, preflight
from biomedclip_cli.config import Preset, ResolvedConfig, TrainConfig, build_config, load_config_file
from biomedclip_cli.disk_space import is_full_disk
from biomedclip_cli.jobs.console_relay import SCRATCH_PREFIX, collect_leftover_logs, relayed_console
from biomedclip_cli.launch.launch_failures import cause_in_words, launcher_failure, rendezvous_problem
from biomedclip_cli.launch.launcher import run_supervised
from biomedclip_cli.launch.plan import RunPlan
from biomedclip_cli.rank.handover import handover_environment
from biomedclip_cli.rank.protocol import ERROR_FILE_VARIABLE
from biomedclip_cli.runs.bad_samples import BAD_SAMPLES_FILE, merge_bad_samples
from biomedclip_cli.runs.folder import LOG_FILE, LaunchRecord, published_since, run_config_text, this_launch
from biomedclip_cli.runs.resuming import finished_epochs
from biomedclip_cli.runs.run_folder import RunFolder

INDUCTOR_CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"
ANNOUNCED_DEFAULTS = ("model", "batch_size", "epochs", "lr", "warmup", "precision", "nproc_per_node")


@contextmanager
def working_folder(folder: Path | str | None) -> Iterator[None]:
    """Relative paths resolve from `folder` inside the block (None: the current folder); the current folder is restored after it."""
    previous = Path.cwd()
    if folder is not None:
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def load_train_config(config_file: Path | None, overrides: dict[str, Any], extra_args: list[str]) -> TrainConfig:
    """The TrainConfig from the YAML file and the typed options (raises ProblemFound on bad input)."""
    file_values = load_config_file(config_file) if config_file else {}
    return build_config(file_values, overrides, extra_args, config_file)


def checked_config(config: TrainConfig, *, dry_run: bool) -> ResolvedConfig:
    """Preflight the config for this machine, print its problems (exit 2 on an error) and what --preset chose; the resolved config."""
    installed = installed_gpus()
    used = run_gpus(installed, config.gpus)
    bf16 = gpus_support_bf16(used) if config.preset is not Preset.none else None
    checked = preflight(config, LaunchSite(len(used), len(installed), bf16, dry_run=dry_run))
    return reported(checked)


def reported(checked: Preflight) -> ResolvedConfig:
    """Print a preflight's warnings and notes and what --preset chose; its resolved config (ProblemFound at its first error)."""
    console.report(checked.problems)
    for note in checked.notes:
        console.err.print(f"bmclip: {note}", markup=False)
    if checked.preset is not None:
        console.err.print(f"bmclip: {checked.preset.summary()}", markup=False)
    if checked.config is None:  # preflight leaves it out only after an error, which report raised
        raise AssertionError("preflight resolved no config and reported no error")
    return checked.config


def prepared_launch(config: TrainConfig, *, dry_run: bool, cwd: Path | None = None) -> RunPlan:
    """Preflight the config for this machine (see checked_config) and plan its launch.

    With `cwd`, the config is checked as seen from that folder and the command runs there (its dry-run line starts with `cd`).
    """
    with working_folder(cwd):
        resolved = checked_config(config, dry_run=dry_run)
    return RunPlan.of(resolved, cwd=str(cwd) if cwd else None)


def said_finished(config: TrainConfig, *, dry_run: bool, run_dir: Path | None = None, cwd: Path | None = None) -> bool:
    """True, having said so, when the checkpoint to resume from already holds every planned epoch (there is nothing to run).

    `run_dir` names the run folder as the user gave it (default: the config's); `cwd` is the folder
    the config's relative paths resolve from (default: the current one). Under --dry-run the message
    goes to stderr, since stdout holds only a command line (and there is none).
    """
    with working_folder(cwd):
        done = finished_epochs(config)
    if done is None:
        return False
    where = console.err if dry_run else console.out
    shown = run_dir or config.run_dir()
    where.print(f"bmclip: run '{shown}' has finished: epoch {done} of {config.planned_epochs()} "
                f"(train it longer with: bmclip resume {shown} --epochs N)", markup=False)
    return True


def announce_defaults(given: TrainConfig, resolved: TrainConfig) -> None:
    """Say which training-shaping values the user left to bmclip, in one line."""
    defaulted = [name for name in ANNOUNCED_DEFAULTS if name not in given.model_fields_set]
    if defaulted:
        values = ", ".join(f"{name}={_shown(getattr(resolved, name))}" for name in defaulted)
        console.print_warning(f"not given, so using defaults: {values}")


def _shown(value: object) -> str:
    return str(getattr(value, "value", value))


def launch_and_summarise(plan: RunPlan, *, verbose: bool = False) -> int:
    """Run the training, print one summary (or why the nodes never met), and return the exit status.

    On one node this process writes the run folder's bmclip.yaml and launch.json before launching;
    on several, global rank 0 writes them once every node has arrived (see rank/handover.py).
    The console shows rank 0's progress; every rank's output goes to the run folder's ranks/
    (jobs/console_relay.py), or, with `verbose`, to the console as open_clip prints it.
    The run folder is the config's as seen from the folder the command runs in.
    """
    config, command = plan.config, plan.launch
    folder = Path(command.cwd or Path.cwd()).resolve()
    run_folder = RunFolder(folder / config.run_dir())
    run_dir = run_folder.path
    with working_folder(folder):
        config_text = run_config_text(config)
    record = this_launch(folder, config.nnodes)
    private: dict[str, str] = {}
    if config.nnodes == 1:
        run_folder.publish(config_text, record)
    else:
        private = handover_environment(config_text, record)
    for kept in collect_leftover_logs(run_dir):
        console.err.print(f"bmclip: kept the launcher log of an earlier launch that was killed: {kept}", markup=False)
    console.err.print(f"bmclip: launching {_launch_scope(config)}: {command.shell_line()}", markup=False)
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch:
        error_file = Path(scratch) / "launcher-error.json"
        with relayed_console(Path(scratch), run_dir, verbose=verbose, terminal=console.err.is_terminal) as relay:
            env = {**private, **relay.env, **_temporary_folder(Path(scratch)), ERROR_FILE_VARIABLE: str(error_file)}
            status = run_supervised(command, env, relay.output)
        failure = launcher_failure(error_file) if status != 0 else None
        _unless_disk_full(lambda: relay.keep_in(run_dir), f"keep the launcher's log in {run_dir}")
        for line in relay.errors() if status != 0 else []:
            console.print_error(line)
    cause = cause_in_words(failure, config, run_dir) if failure is not None else None
    owner = run_folder.launch_record()
    holds_rank_0 = owner is not None and owner.same_launch(record)
    if holds_rank_0:
        _unless_disk_full(lambda: run_folder.record_exit(status, cause), f"record the exit status in {run_dir}")
        _unless_disk_full(lambda: merge_bad_samples(run_dir), f"merge the list of bad samples in {run_dir}")
    problem = rendezvous_problem(config, failure.message) if failure is not None and config.nnodes > 1 else None
    if problem is not None:
        console.print_error(problem.line())
        return status
    shown = Path(command.cwd) / config.run_dir() if command.cwd else None
    if config.nnodes == 1 or holds_rank_0:
        print_summary(config, status, shown, cause)
    else:
        print_node_summary(config, status, owner if published_since(owner, record.started) else None, shown, cause)
    return status


def _temporary_folder(scratch: Path) -> dict[str, str]:
    """The launch's scratch folder as the temporary folder of torchrun and the ranks, so that what they leave there (torchelastic_*
    folders, libraries' temporary files) goes with it; torch.compile's cache keeps its usual place, to last from run to run."""
    cache = os.environ.get(INDUCTOR_CACHE_VARIABLE) or str(Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}")
    return {"TMPDIR": str(scratch), INDUCTOR_CACHE_VARIABLE: cache}


def _unless_disk_full(step: Callable[[], object], what: str) -> None:
    """Run one of the bookkeeping steps after a launch; on a full disk, warn and go on, so that the run's own cause is still said."""
    try:
        step()
    except OSError as exc:
        if not is_full_disk(exc):
            raise
        console.print_warning(f"could not {what}: the disk is full")


def _launch_scope(config: TrainConfig) -> str:
    processes = f"{config.nproc_per_node} process(es)"
    if config.nnodes == 1:
        return processes
    return (f"{processes} on this node, one of {config.nnodes} nodes meeting at {config.rdzv_endpoint} "
            f"(waiting up to {config.rdzv_timeout} s for the others)")


def print_summary(config: TrainConfig, status: int, run_dir: Path | None = None, cause: str | None = None, *, slurm: bool = False) -> None:
    """One summary of the run: folder, last checkpoint, epochs, loss, samples/s, zero-shot and best checkpoint,
    skipped samples, the cause of a failure and the command that continues it.

    Lines never wrap or cut paths. `run_dir` names the run folder when it is not the config's, as
    seen from the current folder; `cause` is the first failed rank's exception, in one line; `slurm`:
    the end of a SLURM job, continued by submitting its job again.
    """
    run_dir = run_dir or config.run_dir()
    title = "[green]bmclip: training finished[/]" if status == 0 else f"[red]bmclip: training stopped (exit status {status})[/]"
    _print_rows(title, {"run folder": str(run_dir), **_run_state_rows(config, run_dir, ""), **_cause_row(cause),
                        **_next_row(config, status, run_dir, resubmit=slurm), "log": str(run_dir / LOG_FILE)})


def print_node_summary(config: TrainConfig, status: int, owner: LaunchRecord | None, run_dir: Path | None = None,
                       cause: str | None = None) -> None:
    """The summary on a node that does not hold global rank 0: only what node 0 wrote to the run folder, else where node 0's state is.

    `owner` is node 0's launch record when the run folder holds this job's (a shared file system).
    """
    run_dir = run_dir or config.run_dir()
    ended = "finished" if status == 0 else f"stopped (exit status {status})"
    title = f"[{'green' if status == 0 else 'red'}]bmclip: training {ended} on this node; node 0 owns the run's state[/]"
    if owner is None:
        _print_rows(title, {"run folder": f"{run_dir} on node 0's machine (this node sees no state of this job in it)",
                            **_cause_row(cause), **_next_row(config, status, run_dir)})
        return
    logs = [run_dir / LOG_FILE, *RunFolder(run_dir).node_logs()]
    _print_rows(title, {"run folder": str(run_dir), "node 0": f"bmclip process {owner.pid} on {owner.host}",
                        **_run_state_rows(config, run_dir, " (as node 0 wrote them)"), **_cause_row(cause),
                        **_next_row(config, status, run_dir), "logs": ", ".join(str(log) for log in logs)})


def _cause_row(cause: str | None) -> dict[str, str]:
    return {"cause": cause} if cause else {}


def _next_row(config: TrainConfig, status: int, run_dir: Path, *, resubmit: bool = False) -> dict[str, str]:
    """The command that continues a stopped run from its last checkpoint (on several nodes, one per node; a SLURM job's resubmits
    its job file)."""
    if status == 0:
        return {}
    if config.nnodes == 1 or resubmit:
        return {"to continue": f"bmclip resume {run_dir}"}
    return {"to continue": f"bmclip resume {run_dir} --node-rank K, on each node K = 0..{config.nnodes - 1}"}


def _run_state_rows(config: TrainConfig, run_dir: Path, source: str) -> dict[str, str]:
    state = RunFolder(run_dir).snapshot()
    rows = {"last checkpoint": str(state.last_checkpoint) if state.last_checkpoint else "none",
            "epochs done": f"{state.epochs_done} of {config.epochs}{source}"}
    if state.progress:
        rows["final loss"] = f"{state.progress[-1].loss:.4f} (first logged {state.progress[0].loss:.4f})"
        rows["samples/s"] = f"{state.progress[-1].samples_per_second:.1f}"
    if state.zero_shot:
        last = state.zero_shot[-1]
        rows["zero-shot top-1"] = f"{last.top1:.3f} after epoch {last.epoch} ({last.images} images, {last.classes} classes)"
    if state.best is not None:
        best = state.best
        rows["best checkpoint"] = f"{run_dir / best.checkpoint} (epoch {best.epoch}, {best.metric} {best.value:.3f})"
    if state.selected is not None:
        rows["sample filter"] = state.selected.described()
    if state.bad_samples:
        rows["bad samples"] = f"{len(state.bad_samples)} skipped, listed in {run_dir / BAD_SAMPLES_FILE}"
    return rows


def _print_rows(title: str, rows: dict[str, str]) -> None:
    console.out.print(title)
    for label, value in rows.items():
        console.out.print(f"  [bold]{label:<16}[/]", end="")
        console.out.print(value, markup=False)
