"""One run folder <logs>/<name>/ as an object: the files it owns (runs/folder.py names them), its writes, and one snapshot of where
the run stands, which the training summary, `bmclip runs` and `bmclip report` all read.

Every file the launching process writes here is written atomically and synced (partial_files.py); the ranks write theirs the
same way (checkpoints, best.pt) or append to files of their own (logs, bad-sample parts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.problems import ProblemFound
from biomedclip_cli.runs.bad_samples import BAD_SAMPLES_FILE, BadSample, recorded_bad_samples
from biomedclip_cli.runs.checkpoints import looks_complete
from biomedclip_cli.runs.filter_counts import FilterTotals, filter_totals
from biomedclip_cli.runs.folder import (
    CONFIG_FILE,
    LaunchRecord,
    TrainProgress,
    checkpoint_epoch,
    epoch_checkpoints,
    node_logs,
    publish_run_state,
    read_launch_record,
    read_params,
    read_run_config,
    record_exit,
    train_progress,
)
from biomedclip_cli.runs.zero_shot_log import BestCheckpoint, ZeroShotRecord, read_best, read_records


@dataclass(frozen=True)
class RunSnapshot:
    """Where a run stands, read from its folder at one moment.

    `last_checkpoint` is the newest epoch checkpoint whose file is complete (its zip directory reads; no torch), the one a
    resume would start from unless a deeper check finds it damaged; `epochs_done` is its epoch. `selected`: what --where or
    --classes kept and dropped so far (None for a run without a filter).
    """

    folder: Path
    config: TrainConfig | None
    params: dict[str, str]
    launch: LaunchRecord | None
    checkpoints: list[Path]
    last_checkpoint: Path | None
    progress: list[TrainProgress]
    zero_shot: list[ZeroShotRecord]
    best: BestCheckpoint | None
    bad_samples: list[BadSample] = field(default_factory=list)
    selected: FilterTotals | None = None

    @property
    def epochs_done(self) -> int:
        """The epoch of the last complete checkpoint (0 without one)."""
        return checkpoint_epoch(self.last_checkpoint) if self.last_checkpoint else 0

    @property
    def model(self) -> str:
        """The model trained: from bmclip.yaml, else open_clip's params.txt ('?' with neither)."""
        return self.config.model if self.config else self.params.get("model", "?")

    @property
    def planned_epochs(self) -> int | None:
        """The epochs the run trains in all: from bmclip.yaml, else params.txt (None when neither says)."""
        if self.config is not None:
            return self.config.planned_epochs()
        epochs = self.params.get("epochs", "")
        return int(epochs) if epochs.isdigit() else None


class RunFolder:
    """A run folder and every file in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def bad_samples_file(self) -> Path:
        """The merged list of the samples the run skipped."""
        return self.path / BAD_SAMPLES_FILE

    def config(self) -> TrainConfig:
        """The config the run was launched with (ProblemFound when bmclip.yaml is missing or unreadable)."""
        return read_run_config(self.path)

    def launch_record(self) -> LaunchRecord | None:
        """The record of the run's last launch, None without one."""
        return read_launch_record(self.path)

    def node_logs(self) -> list[Path]:
        """The node-K.log files of a run on several nodes, lowest node first."""
        return node_logs(self.path)

    def publish(self, config_text: str, record: LaunchRecord) -> None:
        """Write bmclip.yaml and launch.json (each replaced whole, synced), as the launch of `record`, published now."""
        publish_run_state(self.path, config_text, record)

    def record_exit(self, status: int, cause: str | None = None) -> None:
        """Add the launch's exit status and the cause of a failure to launch.json (replaced whole, synced)."""
        record_exit(self.path, status, cause)

    def snapshot(self) -> RunSnapshot:
        """Where the run stands now (see RunSnapshot)."""
        try:
            config = self.config() if (self.path / CONFIG_FILE).is_file() else None
        except ProblemFound:
            config = None
        checkpoints = epoch_checkpoints(self.path)
        complete = [checkpoint for checkpoint in checkpoints if looks_complete(checkpoint)]
        return RunSnapshot(self.path, config, read_params(self.path), self.launch_record(), checkpoints, complete[-1] if complete else None,
                           train_progress(self.path), read_records(self.path), read_best(self.path), recorded_bad_samples(self.path),
                           filter_totals(self.path))
