"""What a SLURM job asks for and how its shell prepares the environment: one pydantic model whose fields are also slurm-gen's flags.

Light (pydantic and the config's option helper only), so that slurm-gen's --help builds its options without importing the
job writer (jobs/slurm.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from biomedclip_cli.config import option

JOB = "SLURM job"


def _job_option(default: Any, text: str, example: str, shown_default: str | None = None, **constraints: Any) -> Any:
    return option(default, text, JOB, example, shown_default, to="slurm", **constraints)


class SlurmJob(BaseModel):
    """The job's resources and environment (the training itself is the config's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: int = _job_option(1, "Nodes to train on.", "4", "--nnodes of the config, else 1", gt=0)
    gpus_per_node: int = _job_option(0, "GPUs of each node (0: a CPU job; set its ranks with --nproc-per-node).", "8", "required", ge=0)
    partition: str | None = _job_option(None, "SLURM partition.", "gpu", metavar="NAME")
    account: str | None = _job_option(None, "SLURM account to charge.", "biomed-lab", metavar="NAME")
    time: str | None = _job_option(None, "Time limit, e.g. 2-00:00:00 or 90 (minutes).", "2-00:00:00", metavar="TIME")
    cpus_per_task: int | None = _job_option(None, "CPUs of each node's task (one task a node runs all its ranks).", "32",
                                            "processes x (workers + 1)", gt=0)
    mem: str | None = _job_option(None, "Memory a node, e.g. 256G.", "256G", metavar="SIZE")
    qos: str | None = _job_option(None, "SLURM quality of service.", "normal", metavar="NAME")
    constraint: str | None = _job_option(None, "SLURM node features, e.g. a100.", "a100", metavar="FEATURES")
    job_name: str | None = _job_option(None, "Job name (%x in the log's name).", "biomedica", "the run name", metavar="NAME")
    setup: tuple[str, ...] = _job_option((), "A shell line run before training, e.g. 'module load cuda/12.4' (repeatable; shell code, "
                                              "written as given).", "module load cuda/12.4", metavar="LINE")
    venv: str | None = _job_option(None, "Virtual environment the job activates.", "/opt/venvs/bmclip", metavar="PATH")
    conda_env: str | None = _job_option(None, "Conda environment the job activates.", "bmclip", metavar="NAME")
    chdir: str = _job_option("", "Folder the job runs in; relative paths of the config are read from there.", "/scratch/project",
                             "this folder", metavar="PATH")
    signal_before: int = _job_option(120, "Seconds before the time limit at which the job requeues itself.", "300", gt=0)
    max_restarts: int = _job_option(3, "Most times the job requeues itself.", "5", ge=0)
    sbatch: tuple[str, ...] = _job_option((), "Any other sbatch option as KEY=VALUE, e.g. mail-type=END (repeatable).", "mail-type=END",
                                          metavar="KEY=VALUE")
    python: str = Field("python", description="The Python the job runs (an activated environment's, else this one's path).")


JOB_OPTIONS = tuple(name for name, field in SlurmJob.model_fields.items() if isinstance(field.json_schema_extra, dict))
JOB_HELP_FIRST = ("nodes", "gpus_per_node", "partition", "account", "time", "venv", "conda_env")  # the rest: slurm-gen --help-all
