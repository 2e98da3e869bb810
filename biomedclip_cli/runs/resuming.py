"""`bmclip resume`'s plan: the config a run was launched with, continued from its newest complete checkpoint.

A run folder holds everything needed: bmclip.yaml (the resolved config, paths as the user typed
them) and launch.json (the folder it was launched from, where those relative paths resolve).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biomedclip_cli.config import TrainConfig, build_config, flag
from biomedclip_cli.problems import Problem, error, warning
from biomedclip_cli.runs.checkpoints import newest_complete_checkpoint
from biomedclip_cli.runs.folder import CONFIG_FILE, checkpoint_epoch, resumes_own_checkpoint
from biomedclip_cli.runs.run_folder import RunFolder

SCHEDULE_FIELDS = ("batch_size", "nproc_per_node")


@dataclass
class ResumePlan:
    """How to continue a run: its config (resume set to the chosen checkpoint), the folder to launch from, what was found."""

    config: TrainConfig | None
    launch_dir: Path
    problems: list[Problem] = field(default_factory=list)


def plan_resume(run_dir: Path, overrides: dict[str, Any]) -> ResumePlan:
    """The run's saved config with `overrides` applied, resuming from its newest checkpoint that loads.

    Raises ProblemFound when bmclip.yaml is missing or unreadable; a run with no complete
    checkpoint gives a plan whose problems end with an error (after a warning per skipped file).
    """
    run_dir = run_dir.resolve()
    saved = RunFolder(run_dir).config()
    problems: list[Problem] = []
    launch_dir = _launch_dir(run_dir, problems)
    point = newest_complete_checkpoint(run_dir)
    problems.extend(point.skipped)
    if point.checkpoint is None:
        problems.append(error(str(run_dir), "has no complete checkpoint to resume from",
                              f"start it again in the same folder: bmclip train --config {run_dir / CONFIG_FILE} --resume auto"))
        return ResumePlan(None, launch_dir, problems)
    values = saved.model_dump(mode="json", exclude={"epochs"} if saved.checkpoint_every_samples else set())
    updates = {**overrides, "resume": str(point.checkpoint), **_moved_folder_updates(saved, run_dir, launch_dir, problems)}
    config = build_config(values, updates, [], run_dir / CONFIG_FILE)
    problems.extend(_override_warnings(saved, config, overrides))
    return ResumePlan(config, launch_dir, problems)


def _launch_dir(run_dir: Path, problems: list[Problem]) -> Path:
    """The folder the run was launched from (relative paths in bmclip.yaml resolve there), else the current one."""
    record = RunFolder(run_dir).launch_record()
    if record is None:
        return Path.cwd()
    if not Path(record.cwd).is_dir():
        problems.append(warning(str(run_dir), f"was launched from '{record.cwd}', which no longer exists",
                                "relative paths in its bmclip.yaml are resolved from the current folder"))
        return Path.cwd()
    return Path(record.cwd)


def _moved_folder_updates(saved: TrainConfig, run_dir: Path, launch_dir: Path, problems: list[Problem]) -> dict[str, str]:
    """--logs/--name pointing at RUN_DIR when the run folder is no longer where its config says."""
    if (launch_dir / saved.run_dir()).resolve() == run_dir:
        return {}
    problems.append(warning(str(run_dir), f"was launched as '{saved.run_dir()}' from '{launch_dir}'", "continuing it where it is now"))
    return {"logs": str(run_dir.parent), "name": run_dir.name}


def _override_warnings(saved: TrainConfig, config: TrainConfig, overrides: dict[str, Any]) -> list[Problem]:
    problems = []
    changed = [name for name in SCHEDULE_FIELDS if name in overrides and getattr(saved, name) != getattr(config, name)]
    if changed:
        before = saved.batch_size * (saved.nproc_per_node or 1)
        after = config.batch_size * (config.nproc_per_node or 1)
        problems.append(warning(flag(changed[0]),
                                f"changes the global batch from {before} to {after}: "
                                "steps per epoch and the learning-rate schedule change from the checkpoint on",
                                "keep the run's settings for the schedule it started with"))
    if config.planned_epochs() > saved.planned_epochs():
        problems.append(warning("--epochs" if "epochs" in overrides else "--total-samples",
                                f"extends the run from {saved.planned_epochs()} to {config.planned_epochs()} epochs: the learning-rate "
                                "schedule is recomputed over the longer run, so the rate rises again from the checkpoint on"))
    return problems


def finished_epochs(config: TrainConfig) -> int | None:
    """The epochs the run's own checkpoint to resume from holds when that is every planned epoch (nothing left to train), else None."""
    if not resumes_own_checkpoint(config):
        return None
    assert config.resume is not None
    done = checkpoint_epoch(Path(config.resume))
    return done if done >= config.planned_epochs() else None
