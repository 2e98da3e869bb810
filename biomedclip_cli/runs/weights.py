"""Which weights a name means for `bmclip eval`: a run folder (its newest checkpoint), a checkpoint file, an open_clip tag, or `none`.

Named like `bmclip train --pretrained` names them; a run's progression is its starting weights and every epoch checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biomedclip_cli.config import TrainConfig
from biomedclip_cli.models.config_lookup import brings_own_weights
from biomedclip_cli.models.evaluation import Weights
from biomedclip_cli.pixel_policy import DEFAULT_INTENSITY, DEFAULT_MAX_PIXELS, INTENSITY_FIX, PixelSettings
from biomedclip_cli.problems import ProblemFound, error
from biomedclip_cli.runs.folder import CHECKPOINT_DIR, CONFIG_FILE, epoch_checkpoints
from biomedclip_cli.runs.run_folder import RunFolder

UNTRAINED = "none"


def resolve_checkpoint(checkpoint: Path) -> Path:
    """A checkpoint file: the file itself, or the newest epoch_K.pt of a run folder."""
    if checkpoint.is_file():
        return checkpoint
    if checkpoint.is_dir():
        found = epoch_checkpoints(checkpoint)
        if found:
            return found[-1]
        raise ProblemFound(error("--checkpoint", f"run folder '{checkpoint}' has no checkpoints/epoch_K.pt",
                                 "train it first or pass a checkpoint file"))
    raise ProblemFound(error("--checkpoint", f"'{checkpoint}' does not exist", "pass a run folder or a checkpoint file"))


def run_config(path: Path) -> TrainConfig | None:
    """The config of the run a folder or checkpoint belongs to (a run folder, or <run>/checkpoints/epoch_K.pt), from its bmclip.yaml.

    None when there is no bmclip.yaml; ProblemFound when it cannot be read.
    """
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, folder.parent if folder.name == CHECKPOINT_DIR else None):
        if candidate is not None and (candidate / CONFIG_FILE).is_file():
            return RunFolder(candidate).config()
    return None


def first_run_config(named: Sequence[str]) -> TrainConfig | None:
    """The bmclip.yaml config of the first named run folder or checkpoint of a run, if any."""
    for name in named:
        config = run_config(Path(name)) if Path(name).exists() else None
        if config is not None:
            return config
    return None


def pixels_of(intensity: str | None, named: Sequence[str]) -> PixelSettings:
    """How to read the images: --intensity when given, else as the first named run read its own (its bmclip.yaml), else the defaults."""
    config = first_run_config(named)
    recorded = (config.intensity, config.max_pixels) if config is not None else (DEFAULT_INTENSITY, DEFAULT_MAX_PIXELS)
    try:
        return PixelSettings.of(intensity or recorded[0], recorded[1])
    except ValueError as exc:
        raise ProblemFound(error("--intensity", str(exc), INTENSITY_FIX)) from None


def model_of(model: str | None, named: Sequence[str]) -> str:
    """The model to evaluate: --model, or the one recorded in the bmclip.yaml of a named run."""
    if model:
        return model
    config = first_run_config(named)
    if config is not None:
        return config.model
    raise ProblemFound(error("--model", "is needed: no run folder among the weights says which model they are for",
                             "pass --model, e.g. --model ViT-B-32"))


def weights_named(name: str, model: str, option: str = "--checkpoint") -> Weights:
    """What a --checkpoint value names: a run folder, a checkpoint file, `none` (untrained), or an open_clip tag."""
    from biomedclip_cli.models.validation import check_pretrained_tag

    if name == UNTRAINED:
        return Weights(model if brings_own_weights(model) else "untrained", model, None)
    path = Path(name)
    if path.exists():
        return Weights(name, model, str(resolve_checkpoint(path)))
    if brings_own_weights(model):
        raise ProblemFound(error(option, f"'{name}' does not exist", f"{model} brings its own weights: leave {option} out"))
    problems = check_pretrained_tag(model, name)
    if problems:
        raise ProblemFound(error(option, f"'{name}' is neither a file, a run folder, '{UNTRAINED}', nor an open_clip tag of {model}",
                                 problems[0].fix))
    return Weights(name, model, name)


def run_progression(run_dir: Path, model: str) -> list[Weights]:
    """A run's starting weights (its --pretrained, or untrained) and every epoch checkpoint, in order."""
    checkpoints = epoch_checkpoints(run_dir)
    first = start_weights(run_dir, model, "--compare", from_scratch_ok=True)
    if not checkpoints:
        raise ProblemFound(error("--compare", f"run folder '{run_dir}' has no checkpoints/epoch_K.pt yet",
                                 "wait for the first epoch to finish"))
    return [first, *(Weights(checkpoint.stem, model, str(checkpoint)) for checkpoint in checkpoints)]


def start_weights(run: Path, model: str, option: str, *, from_scratch_ok: bool = False) -> Weights:
    """The weights a run (its folder, or one of its checkpoints) started from: its --pretrained (a file found from the folder the
    run was launched in), or the model's own weights for hf-hub:/local-dir: models; the untrained model with `from_scratch_ok`,
    else ProblemFound for a run trained from scratch."""
    config = run_config(run)
    if config is None:
        raise ProblemFound(error(option, f"'{run}' is not a bmclip run folder (no {CONFIG_FILE})",
                                 "pass the <logs>/<name> folder of a bmclip train run"))
    start = config.pretrained
    if start:
        launch = RunFolder(run if run.is_dir() else run.parent.parent).launch_record()
        launched_from = Path(launch.cwd) / start if launch is not None and not Path(start).is_absolute() else None
        found = str(launched_from) if launched_from is not None and not Path(start).exists() and launched_from.exists() else start
        return Weights(f"start ({start})", model, found)
    if brings_own_weights(model):
        return Weights("start (its own weights)", model, None)
    if from_scratch_ok:
        return Weights("start (untrained)", model, None)
    raise ProblemFound(error(option, f"run '{run}' was trained from scratch (no --pretrained), so it has no starting weights to blend with",
                             "use its checkpoints as they are; WiSE-FT is for runs fine-tuned from pretrained weights"))
