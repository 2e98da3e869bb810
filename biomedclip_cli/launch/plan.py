"""A run as preflight decided it: the resolved config, and everything a launch derives from it, made once.

`bmclip train`, `resume` and `--dry-run` launch (or print) `plan.launch`; slurm-gen writes `plan.srun_words()` into its job
file; bench-data builds open_clip's arguments from `plan.open_clip_args`. Nothing downstream reads the config's `auto` values
again: they are decided in `plan.config` (a ResolvedConfig).
"""

from __future__ import annotations

from dataclasses import dataclass

from biomedclip_cli.config import ResolvedConfig
from biomedclip_cli.launch.launcher import LaunchCommand, srun_words, torchrun_command
from biomedclip_cli.launch.openclip_args import openclip_argv
from biomedclip_cli.rank.settings import settings_args


@dataclass(frozen=True)
class RunPlan:
    """The resolved config; open_clip_train's arguments, the ranks' settings and the launcher's command line derived from it."""

    config: ResolvedConfig
    open_clip_args: tuple[str, ...]
    rank_settings: tuple[str, ...]
    launch: LaunchCommand

    @classmethod
    def of(cls, config: ResolvedConfig, *, python: str | None = None, cwd: str | None = None) -> RunPlan:
        """The plan of a resolved config, launched by `python` (default: this one) from `cwd` (default: the current folder)."""
        open_clip_args = openclip_argv(config)
        return cls(config, tuple(open_clip_args), tuple(settings_args(config)),
                   torchrun_command(config, open_clip_args, python=python, cwd=cwd))

    def srun_words(self, python: str = "python") -> list[str]:
        """The shell words of a SLURM job's launch of this plan (launch/launcher.py srun_words)."""
        return srun_words(self.config, list(self.open_clip_args), python=python)
