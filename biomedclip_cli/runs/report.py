"""A run's curves and a one-page summary: read from the run folder's logs, drawn as PNGs, written as HTML.

Training curves come from TensorBoard's event files when the run logged them (x axis: step) and
from open_clip's out.log otherwise (x axis: epoch); validation metrics per epoch from
checkpoints/results.jsonl, and the --val-zeroshot scores from zeroshot.jsonl. Every file is read
as it is, so a report of a run still going shows what it has logged so far (a half-written last
line is skipped).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biomedclip_cli.problems import ProblemFound, error
from biomedclip_cli.runs.folder import CONFIG_FILE, LOG_FILE, REPORT_DIR, RESULTS_FILE, TENSORBOARD_DIR, TrainProgress, checkpoint_epoch
from biomedclip_cli.runs.run_folder import RunFolder
from biomedclip_cli.runs.zero_shot_log import BestCheckpoint, ZeroShotRecord

PLOT_SIZE_INCHES = (8.0, 4.5)
PLOT_DPI = 100
TRAIN_CURVES = {  # file stem: (TensorBoard tag, title, y label)
    "loss": ("train/loss", "Training loss", "contrastive loss"),
    "lr": ("train/lr", "Learning rate", "learning rate"),
    "logit_scale": ("train/scale", "Logit scale (learned temperature)", "logit scale"),
    "samples_per_second": ("train/samples_per_second", "Throughput", "samples / s (all processes)"),
}
RECALL_KEYS = ("image_to_text_R@1", "image_to_text_R@5", "image_to_text_R@10", "text_to_image_R@1", "text_to_image_R@5",
               "text_to_image_R@10")
HARDWARE_PARAMS = ("device", "world_size", "precision", "batch_size", "workers")


@dataclass(frozen=True)
class Curve:
    """One logged quantity over training."""

    xs: list[float]
    ys: list[float]


@dataclass
class RunLogs:
    """Everything a run folder has logged so far."""

    run_dir: Path
    x_label: str
    source: str
    train: dict[str, Curve] = field(default_factory=dict)
    validation: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    checkpoints: list[Path] = field(default_factory=list)
    zero_shot: list[ZeroShotRecord] = field(default_factory=list)
    best: BestCheckpoint | None = None
    epochs_done: int = 0  # the epoch of the newest complete checkpoint, as `bmclip runs` and the summary count it
    data: list[tuple[str, str]] = field(default_factory=list)  # what the run made of its data: filter counts, bad samples


def _tensorboard_curves(folder: Path) -> dict[str, Curve]:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    events.Reload()
    tags = set(events.Tags().get("scalars", []))
    return {stem: Curve([e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)])
            for stem, (tag, _, _) in TRAIN_CURVES.items() if tag in tags}


def _log_curves(progress: list[TrainProgress]) -> dict[str, Curve]:
    xs = [p.epoch + p.samples_seen / p.samples_per_epoch for p in progress]
    values = {"loss": [p.loss for p in progress], "lr": [p.lr for p in progress],
              "samples_per_second": [p.samples_per_second for p in progress]}
    if progress and all(p.logit_scale is not None for p in progress):
        values["logit_scale"] = [float(p.logit_scale) for p in progress if p.logit_scale is not None]
    return {stem: Curve(xs, ys) for stem, ys in values.items() if ys}


def _validation_rows(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the line open_clip is writing right now
            continue
    return rows


def read_run_logs(run_dir: Path) -> RunLogs:
    """The run's logged curves, validation rows, config and checkpoints;
    ProblemFound when it is not a run folder or its bmclip.yaml is broken."""
    if not run_dir.is_dir():
        raise ProblemFound(error("RUN_DIR", f"'{run_dir}' is not a folder", "pass the <logs>/<name> folder of a run"))
    if not any((run_dir / name).exists() for name in (CONFIG_FILE, LOG_FILE)):
        raise ProblemFound(error("RUN_DIR", f"'{run_dir}' has neither {CONFIG_FILE} nor {LOG_FILE}",
                                 "pass the <logs>/<name> folder of a bmclip train run"))
    folder = RunFolder(run_dir)
    config = folder.config() if (run_dir / CONFIG_FILE).is_file() else None  # a broken bmclip.yaml is said, not skipped
    state = folder.snapshot()
    events = run_dir / TENSORBOARD_DIR
    curves = _tensorboard_curves(events) if events.is_dir() and any(events.iterdir()) else {}
    logs = (RunLogs(run_dir, "step", "TensorBoard events", curves) if curves
            else RunLogs(run_dir, "epoch", LOG_FILE, _log_curves(state.progress)))
    logs.validation = _validation_rows(run_dir / RESULTS_FILE)
    logs.zero_shot = state.zero_shot
    logs.config = config.model_dump(mode="json") if config is not None else {}
    logs.params = state.params
    logs.checkpoints, logs.best, logs.epochs_done = state.checkpoints, state.best, state.epochs_done
    if state.selected is not None:
        logs.data.append(("sample filter (--where, --classes)", state.selected.described()))
    if state.bad_samples:
        logs.data.append(("bad samples", f"{len(state.bad_samples)} skipped, listed in {folder.bad_samples_file}"))
    return logs


def _figure(title: str, x_label: str, y_label: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="tight")
    axes = figure.subplots()
    axes.set_title(title)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    return figure, axes


def _plot_validation(logs: RunLogs, path: Path) -> bool:
    from matplotlib.figure import Figure

    rows = [row for row in logs.validation if "epoch" in row]
    if not rows:
        return False
    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="tight")
    loss_axes, recall_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in rows]
    loss_axes.plot(epochs, [row.get("clip_val_loss", float("nan")) for row in rows], marker="o")
    loss_axes.set(title="Validation loss", xlabel="epoch", ylabel="contrastive loss")
    for key in RECALL_KEYS:
        if all(key in row for row in rows):
            recall_axes.plot(epochs, [row[key] for row in rows], marker="o", label=key.replace("_to_", "→").replace("image", "img"))
    recall_axes.set(title="Validation retrieval", xlabel="epoch", ylabel="recall", ylim=(0, 1.02))
    recall_axes.legend(fontsize="small")
    for axes in (loss_axes, recall_axes):
        axes.grid(alpha=0.3)
    figure.savefig(path)
    return True


def write_plots(logs: RunLogs, out_dir: Path) -> list[Path]:
    """One PNG per training curve with data, plus validation metrics per epoch; returns their paths."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ProblemFound(error("bmclip report", "needs matplotlib, which is not installed", "pip install 'bmclip[report]'")) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (_, title, y_label) in TRAIN_CURVES.items():
        curve = logs.train.get(stem)
        if curve is None or not curve.xs:
            continue
        figure, axes = _figure(title, logs.x_label, y_label)
        axes.plot(curve.xs, curve.ys, marker="." if len(curve.xs) < 50 else None)
        if stem == "lr":
            axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        path = out_dir / f"{stem}.png"
        figure.savefig(path)
        written.append(path)
    validation = out_dir / "validation.png"
    if _plot_validation(logs, validation):
        written.append(validation)
    if logs.zero_shot:
        figure, axes = _figure("Zero-shot classification (--val-zeroshot)", "epoch", "accuracy")
        epochs = [record.epoch for record in logs.zero_shot]
        axes.plot(epochs, [record.top1 for record in logs.zero_shot], marker="o", label="top-1")
        axes.plot(epochs, [record.balanced_accuracy for record in logs.zero_shot], marker="o", label="balanced accuracy")
        axes.set_ylim(0, 1.02)
        axes.legend(fontsize="small")
        path = out_dir / "zeroshot.png"
        figure.savefig(path)
        written.append(path)
    return written


def best_checkpoint(logs: RunLogs) -> tuple[Path | None, str]:
    """The checkpoint --keep-best kept, else that of the epoch with the lowest validation loss (else the newest), and why it was chosen."""
    kept = logs.best
    if kept is not None:
        return logs.run_dir / kept.checkpoint, f"best {kept.metric} ({kept.value:.3f}, epoch {kept.epoch}), kept by --keep-best"
    by_epoch = {checkpoint_epoch(path): path for path in logs.checkpoints}
    scored = [(row["clip_val_loss"], int(row["epoch"])) for row in logs.validation
              if "clip_val_loss" in row and int(row.get("epoch", -1)) in by_epoch]
    if scored:
        loss, epoch = min(scored)
        return by_epoch[epoch], f"lowest validation loss ({loss:.4f}, epoch {epoch})"
    return (logs.checkpoints[-1], "newest (no validation loss logged)") if logs.checkpoints else (None, "no checkpoint yet")


def status_line(logs: RunLogs) -> str:
    """How far the run got: epochs with a checkpoint out of those configured."""
    done = logs.epochs_done
    planned = logs.config.get("epochs")
    if planned and done >= int(planned):
        return f"finished: {done} of {planned} epochs"
    return f"in progress or stopped: {done} of {planned or '?'} epochs checkpointed"


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def _final_metrics(logs: RunLogs) -> list[tuple[str, str]]:
    rows = []
    loss = logs.train.get("loss")
    if loss and loss.ys:
        rows.append(("training loss, first → last logged", f"{loss.ys[0]:.4f} → {loss.ys[-1]:.4f}"))
    speed = logs.train.get("samples_per_second")
    if speed and speed.ys:
        rows.append(("samples/s, last logged", f"{speed.ys[-1]:.1f}"))
    if logs.zero_shot:
        last_zero_shot = logs.zero_shot[-1]
        rows.append((f"zero-shot top-1 / balanced accuracy (epoch {last_zero_shot.epoch}, {last_zero_shot.images} images)",
                     f"{last_zero_shot.top1:.3f} / {last_zero_shot.balanced_accuracy:.3f}"))
    if logs.validation:
        last = logs.validation[-1]
        rows += [(f"validation {key} (epoch {last.get('epoch', '?')})", f"{value:.4f}" if isinstance(value, float) else str(value))
                 for key, value in last.items() if key not in ("epoch", "num_samples")]
    return rows


def write_summary(logs: RunLogs, plots: list[Path], out_dir: Path) -> Path:
    """The one-page HTML summary (status, best checkpoint, final metrics, plots, hardware, config) in `out_dir`."""
    best, why = best_checkpoint(logs)
    name = logs.config.get("name") or logs.run_dir.name
    overview = [("run folder", str(logs.run_dir)), ("status", status_line(logs)),
                ("best checkpoint", f"{best} ({why})" if best else why), ("curves read from", logs.source), *logs.data]
    hardware = [(key, logs.params[key]) for key in HARDWARE_PARAMS if key in logs.params]
    images = "".join(f'<figure><img src="{html.escape(path.name)}" alt="{html.escape(path.stem)}"></figure>' for path in plots)
    config = [(key, json.dumps(value) if not isinstance(value, str) else value) for key, value in logs.config.items()]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bmclip run {html.escape(str(name))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin-bottom:1.5em}}\
th,td{{text-align:left;padding:.2em .8em;border-bottom:1px solid #ddd;vertical-align:top}}
th{{font-weight:600;white-space:nowrap}}figure{{display:inline-block;margin:.3em}}img{{max-width:530px}}</style></head>
<body><h1>bmclip run {html.escape(str(name))}</h1>
{_table(overview)}
<h2>Final metrics</h2>{_table(_final_metrics(logs)) if _final_metrics(logs) else "<p>nothing logged yet</p>"}
<h2>Curves</h2>{images or "<p>nothing logged yet</p>"}
<h2>Hardware</h2>{_table(hardware) if hardware else "<p>params.txt not written yet</p>"}
<h2>Config ({CONFIG_FILE})</h2>{_table(config)}
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def report(run_dir: Path, out_dir: Path | None = None) -> tuple[RunLogs, list[Path], Path]:
    """Read the run's logs, write the plots and the summary (into <run>/report/ unless told), and return what was written."""
    logs = read_run_logs(run_dir)
    target = out_dir or run_dir / REPORT_DIR
    plots = write_plots(logs, target)
    return logs, plots, write_summary(logs, plots, target)
