"""`bmclip slurm-gen`: the sbatch file for a SLURM cluster, from the same config `bmclip train` uses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from biomedclip_cli import console
from biomedclip_cli.commands.config_options import ConfigFileOpt, with_config_options
from biomedclip_cli.commands.help_text import examples
from biomedclip_cli.config import OPTION_FIELDS, SLURM_DECIDES, ResolvedConfig, TrainConfig
from biomedclip_cli.problems import Problem, ProblemFound, error, warning

if TYPE_CHECKING:
    from biomedclip_cli.jobs.slurm import SlurmJob

SLURM_FIELDS = tuple(name for name in OPTION_FIELDS if name not in (*SLURM_DECIDES, "nnodes"))
JOB = "SLURM job"

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
    nodes: Annotated[Optional[int], typer.Option(min=1, help="Nodes to train on.", show_default="--nnodes of the config, else 1",
                                                 rich_help_panel=JOB)] = None,
    gpus_per_node: Annotated[Optional[int], typer.Option(min=0, help="GPUs of each node (0: a CPU job; set its ranks with --nproc-per-node).",
                                                         show_default="required", rich_help_panel=JOB)] = None,
    partition: Annotated[Optional[str], typer.Option(help="SLURM partition.", rich_help_panel=JOB)] = None,
    account: Annotated[Optional[str], typer.Option(help="SLURM account to charge.", rich_help_panel=JOB)] = None,
    time: Annotated[Optional[str], typer.Option(help="Time limit, e.g. 2-00:00:00 or 90 (minutes).", rich_help_panel=JOB)] = None,
    cpus_per_task: Annotated[Optional[int], typer.Option(min=1, help="CPUs of each node's task (one task a node runs all its ranks).",
                                                         show_default="processes x (workers + 1)", rich_help_panel=JOB)] = None,
    mem: Annotated[Optional[str], typer.Option(help="Memory a node, e.g. 256G.", rich_help_panel=JOB)] = None,
    qos: Annotated[Optional[str], typer.Option(help="SLURM quality of service.", rich_help_panel=JOB)] = None,
    constraint: Annotated[Optional[str], typer.Option(help="SLURM node features, e.g. a100.", rich_help_panel=JOB)] = None,
    job_name: Annotated[Optional[str], typer.Option(help="Job name (%x in the log's name).", show_default="the run name", rich_help_panel=JOB)] = None,
    setup: Annotated[Optional[list[str]], typer.Option(help="A shell line run before training, e.g. 'module load cuda/12.4' (repeatable; shell code, written as given).",
                                                       rich_help_panel=JOB)] = None,
    venv: Annotated[Optional[Path], typer.Option(help="Virtual environment the job activates.", rich_help_panel=JOB)] = None,
    conda_env: Annotated[Optional[str], typer.Option(help="Conda environment the job activates.", rich_help_panel=JOB)] = None,
    chdir: Annotated[Optional[Path], typer.Option(help="Folder the job runs in; relative paths of the config are read from there.",
                                                  show_default="this folder", rich_help_panel=JOB)] = None,
    signal_before: Annotated[int, typer.Option(min=1, help="Seconds before the time limit at which the job requeues itself.", rich_help_panel=JOB)] = 120,
    max_restarts: Annotated[int, typer.Option(min=0, help="Most times the job requeues itself.", rich_help_panel=JOB)] = 3,
    sbatch: Annotated[Optional[list[str]], typer.Option("--sbatch", help="Any other sbatch option as KEY=VALUE, e.g. mail-type=END (repeatable).",
                                                        metavar="KEY=VALUE", rich_help_panel=JOB)] = None,
    remote_paths: Annotated[bool, typer.Option(help="Paths (and open_clip_train) that exist only on the cluster: warn instead of failing.",
                                               rich_help_panel=JOB)] = False,
    out: Annotated[Optional[Path], typer.Option(help="Write the job file here (its folder must exist) and create the run folder (with a copy); without it the file goes to stdout.",
                                                rich_help_panel=JOB)] = None,
    submit_job: Annotated[bool, typer.Option("--submit", help="Also submit the job with sbatch and print its id.", rich_help_panel=JOB)] = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Write an sbatch file that trains this config on a SLURM cluster: srun starts torch.distributed.run on every node.

    Takes the train options and --config file of bmclip train, checked the same way, plus the job's resources. The job logs to its run folder, requeues itself before its time limit and resumes from its newest checkpoint.
    """
    from biomedclip_cli.checks.preflight import LaunchSite, preflight
    from biomedclip_cli.jobs.slurm import (
        SlurmJob,
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
    if gpus_per_node is None:
        raise ProblemFound(error("--gpus-per-node", "is missing", "pass the GPUs of each node, e.g. --gpus-per-node 4 (0 for a CPU job, with --nproc-per-node N)"))
    config, problems = slurm_train_config(given, nodes or given.nnodes)
    problems += out_problems(out)
    folder = (chdir or Path.cwd()).absolute()
    if not folder.is_dir() and (submit_job or not remote_paths):
        problems.append(error("--chdir", f"folder '{folder}' does not exist here",
                              "create it, or (without --submit) pass --remote-paths if it exists only on the cluster"))
    with working_folder(folder if folder.is_dir() else None):  # relative paths mean what they will mean in the job
        checked = preflight(config, LaunchSite(gpus_per_node, elsewhere=remote_paths, slurm=True))
    console.report(problems)
    resolved = reported(checked)
    job = SlurmJob(nodes=config.nnodes, gpus_per_node=gpus_per_node, chdir=str(folder), cpus_per_task=cpus_per_task, partition=partition,
                   account=account, time=time, mem=mem, qos=qos, constraint=constraint, job_name=job_name, signal_before=signal_before,
                   max_restarts=max_restarts, extra_sbatch=tuple(sbatch or ()), setup=tuple(setup or ()),
                   venv=str(venv) if venv else None, conda_env=conda_env, python="python" if venv or conda_env else sys.executable)
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
        console.err.print(f"bmclip: submitted job {job_id}; its log: {job_run_dir(resolved, job)}/{job.job_name or resolved.name}-{job_id}.out",
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


slurm_gen_command = with_config_options(TrainConfig, SLURM_FIELDS)(slurm_gen)
