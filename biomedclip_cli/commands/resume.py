"""`bmclip resume RUN_DIR`: continue a stopped run from its newest complete checkpoint, nothing else needed."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import DryRunOpt, RunDirArg, VerboseOpt, with_config_options
from biomedclip_cli.config import TrainConfig
from biomedclip_cli.problems import ProblemFound, error

EPILOG = examples(
    ("continue a stopped run", "bmclip resume logs/vit-b-32-biomedica"),
    ("train a finished run longer", "bmclip resume logs/vit-b-32-biomedica --epochs 40"),
    ("the command it would run on 4 processes, run nothing", "bmclip resume logs/vit-b-32-biomedica --nproc-per-node 4 --dry-run"),
    ("a run on 2 nodes that met by node rank: on node 1", "bmclip resume logs/vit-b-32-biomedica --node-rank 1"),
    ("a run SLURM launched, on this machine instead of sbatch", "bmclip resume logs/vit-b-32-biomedica --local"),
)


def resubmit(run_dir: Path, overrides: dict[str, Any], *, dry_run: bool) -> None:
    """Submit a SLURM run's own job file again (it resumes from the run's newest checkpoint) and print the job id."""
    from biomedclip_cli.jobs.slurm import queued_job_problems, submit
    from biomedclip_cli.jobs.training import said_finished
    from biomedclip_cli.runs.checkpoints import newest_complete_checkpoint
    from biomedclip_cli.runs.folder import SLURM_SCRIPT_FILE
    from biomedclip_cli.runs.run_folder import RunFolder

    script = run_dir / SLURM_SCRIPT_FILE
    if overrides:
        shown = ", ".join(f"--{name.replace('_', '-')}" for name in overrides)
        raise ProblemFound(error(shown, f"cannot change the job file '{script}' of a run SLURM launched",
                           "write a new one with bmclip slurm-gen (the same --name, the new value), or resume here with --local"))
    config, newest = RunFolder(run_dir).config(), newest_complete_checkpoint(run_dir).checkpoint
    as_launched_here = {"logs": str(run_dir.parent), "name": run_dir.name, "resume": str(newest)}
    if newest is not None and said_finished(config.model_copy(update=as_launched_here), dry_run=dry_run, run_dir=run_dir):
        return
    console.report(queued_job_problems(script))
    if dry_run:
        sys.stdout.write(shlex.join(["sbatch", str(script)]) + "\n")
        return
    job_id = submit(script, option=str(run_dir))
    console.err.print(f"bmclip: submitted {script} again as job {job_id}; it resumes from the run's newest complete checkpoint",
                      markup=False)
    sys.stdout.write(job_id + "\n")


def resume(
    run_dir: RunDirArg,
    local: Annotated[bool, typer.Option(
        "--local", help="Resume a run that SLURM launched here on this machine, not by submitting its job file again.")] = False,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Continue a stopped run from its newest complete checkpoint, with the settings it was launched with.

    Settings come from RUN_DIR/bmclip.yaml; relative paths in it resolve from the folder the run was launched in. Checkpoints are loaded
    newest first, and a truncated or corrupt one is skipped with a warning. A finished run is left alone unless --epochs extends it.

    A run on several nodes is resumed by running the command on each node (with its --node-rank when the nodes met by node rank). A run that
    bmclip slurm-gen wrote a job file for is submitted again with sbatch, and the job id is printed.
    """
    from biomedclip_cli.jobs.training import launch_and_summarise, prepared_launch, said_finished
    from biomedclip_cli.runs.folder import SLURM_SCRIPT_FILE
    from biomedclip_cli.runs.resuming import plan_resume

    overrides = overrides or {}
    if not local and (run_dir / SLURM_SCRIPT_FILE).is_file():
        resubmit(run_dir, overrides, dry_run=dry_run)
        return
    resumed = plan_resume(run_dir, overrides)
    console.report(resumed.problems)
    if resumed.config is None:  # plan_resume leaves it out only with an error, which report raised
        raise AssertionError("no config to resume and no error said why")
    if said_finished(resumed.config, dry_run=dry_run, run_dir=run_dir, cwd=resumed.launch_dir):
        return
    plan = prepared_launch(resumed.config, dry_run=dry_run, cwd=resumed.launch_dir)
    if dry_run:
        sys.stdout.write(plan.launch.shell_line() + "\n")
        return
    console.err.print(f"bmclip: resuming from {plan.config.resume}", markup=False)
    raise typer.Exit(launch_and_summarise(plan, verbose=verbose))


# The train options a resume may change (the rest come from the run's bmclip.yaml), with train's own help.
RESUMABLE = ("epochs", "total_samples", "batch_size", "nproc_per_node", "node_rank", "rdzv_endpoint")
resume_command = with_config_options(TrainConfig, RESUMABLE, default_shown="the run's own")(resume)
