"""`bmclip slurm-gen`: the sbatch file for a SLURM cluster, from the same config `bmclip train` uses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.commands.options import ConfigFileOpt, HelpAllOpt, with_config_options
from biomedclip_cli.config import HELP_FIRST, OPTION_FIELDS, SLURM_DECIDES, ResolvedConfig, TrainConfig
from biomedclip_cli.jobs.slurm_job import JOB, JOB_HELP_FIRST, JOB_OPTIONS, SlurmJob
from biomedclip_cli.problems import Problem, ProblemFound, error, warning

SLURM_FIELDS = tuple(name for name in OPTION_FIELDS if name not in (*SLURM_DECIDES, "nnodes"))

EPILOG = examples(
    ("4 nodes of 8 GPUs, written to job.sbatch", "bmclip slurm-gen -c train.yaml --nodes 4 --gpus-per-node 8 --out job.sbatch"),
    ("a CPU job of 4 ranks, submitted at once", "bmclip slurm-gen -c train.yaml --gpus-per-node 0 --nproc-per-node 4 --submit"),
    ("on a login node without the data: print the file", "bmclip slurm-gen -c train.yaml --nodes 2 --gpus-per-node 4 --remote-paths"),
)


def _print_written(config: ResolvedConfig, job: SlurmJob, written: list[Path]) -> None:
    from biomedclip_cli.jobs.slurm import LOG_PATTERN, default_cpus_per_task, job_run_dir

    gpus = f" and {job.gpus_per_node} GPUs" if job.gpus_per_node else ""
    console.out.print(f"bmclip: wrote {', '.join(str(p) for p in written)}", markup=False)
    console.out.print(f"  job         {job.nodes} node(s) x {config.nproc_per_node} process(es), "
                      f"{job.cpus_per_task or default_cpus_per_task(config)} CPUs{gpus} a node", markup=False)
    console.out.print(f"  run folder  {job_run_dir(config, job)}  (log: {LOG_PATTERN})", markup=False)
    console.out.print(f"  submit      sbatch {written[0]}", markup=False)


def slurm_gen(
    ctx: typer.Context,
    config_file: ConfigFileOpt = None,
    remote_paths: Annotated[bool, typer.Option(help="Paths (and open_clip_train) that exist only on the cluster: warn instead of failing.",
                                               rich_help_panel=JOB)] = False,
    out: Annotated[Optional[Path], typer.Option(
        help="Write the job file here (its folder must exist) and create the run folder (with a copy); "
             "without it the file goes to stdout.",
        rich_help_panel=JOB)] = None,
    submit_job: Annotated[bool, typer.Option("--submit", help="Also submit the job with sbatch and print its id.",
                                             rich_help_panel=JOB)] = False,
    help_all: HelpAllOpt = False,
    job_values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Write an sbatch file that trains this config on a SLURM cluster: srun starts torch.distributed.run on every node.

    Takes the train options and --config file of bmclip train, checked the same way, plus the job's resources. The job logs to its run
    folder, requeues itself before its time limit and resumes from its newest checkpoint.
    """
    from biomedclip_cli.checks.preflight import LaunchSite, preflight
    from biomedclip_cli.jobs.slurm import (
        job_problems,
        job_run_dir,
        out_problems,
        render_sbatch,
        secret_problems,
        slurm_train_config,
        submit,
        syntax_problem,
    )
    from biomedclip_cli.jobs.training import announce_defaults, load_train_config, reported, working_folder

    given = load_train_config(config_file, overrides or {}, list(ctx.args))
    job_values = job_values or {}
    if "gpus_per_node" not in job_values:
        raise ProblemFound(error("--gpus-per-node", "is missing",
                                 "pass the GPUs of each node, e.g. --gpus-per-node 4 (0 for a CPU job, with --nproc-per-node N)"))
    config, problems = slurm_train_config(given, job_values.get("nodes", given.nnodes))
    problems += out_problems(out)
    folder = Path(job_values.get("chdir") or Path.cwd()).absolute()
    if not folder.is_dir() and (submit_job or not remote_paths):
        problems.append(error("--chdir", f"folder '{folder}' does not exist here",
                              "create it, or (without --submit) pass --remote-paths if it exists only on the cluster"))
    with working_folder(folder if folder.is_dir() else None):  # relative paths mean what they will mean in the job
        checked = preflight(config, LaunchSite(job_values["gpus_per_node"], elsewhere=remote_paths, slurm=True))
    console.report(problems)
    resolved = reported(checked)
    environment = job_values.get("venv") or job_values.get("conda_env")
    job = SlurmJob.model_validate({**job_values, "nodes": config.nnodes, "chdir": str(folder),
                                   "python": "python" if environment else sys.executable})
    console.report(job_problems(resolved, job))
    text = render_sbatch(resolved, job)
    console.report([*secret_problems(text), *filter(None, [syntax_problem(text)])])
    announce_defaults(given, resolved)
    if out is None and not submit_job:
        if not job_run_dir(resolved, job).is_dir():
            console.report([_create_run_folder_warning(resolved, job)])
        sys.stdout.write(text)
        return
    written = _write(resolved, job, text, out, remote_paths)
    if submit_job:
        job_id = submit(written[-1])
        console.err.print(f"bmclip: submitted job {job_id}; its log: "
                          f"{job_run_dir(resolved, job)}/{job.job_name or resolved.name}-{job_id}.out",
                          markup=False)
        sys.stdout.write(f"{job_id}\n")
        return
    _print_written(resolved, job, written)


def _create_run_folder_warning(config: ResolvedConfig, job: SlurmJob) -> Problem:
    from biomedclip_cli.jobs.slurm import job_run_dir

    return warning("--logs", f"run folder '{job_run_dir(config, job)}' does not exist yet, and SLURM does not create the folder of its log",
                   "create it before sbatch (or let --out/--submit create it)")


def _write(config: ResolvedConfig, job: SlurmJob, text: str, out: Path | None, remote_paths: bool) -> list[Path]:
    """Write --out (when given) and the run folder with bmclip.yaml and the script, which SLURM needs before the job starts.

    With --remote-paths the run folder is created only where the job's folder exists here.
    """
    from biomedclip_cli.jobs.slurm import write_job_files

    written: list[Path] = []
    if out is not None:
        out.write_text(text, encoding="utf-8")
        written.append(out)
    if remote_paths and not Path(job.chdir).is_dir():
        console.report([_create_run_folder_warning(config, job)])
    else:
        written.append(write_job_files(config, job, text))
    return written


slurm_gen_command = with_config_options(TrainConfig, SLURM_FIELDS, help_first=HELP_FIRST)(
    with_config_options(SlurmJob, JOB_OPTIONS, into="job_values", help_first=JOB_HELP_FIRST)(slurm_gen))
