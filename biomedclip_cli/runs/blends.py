"""A run's weights blended: WiSE-FT between the weights it started from and a checkpoint, and soups of its epoch checkpoints.

`--wise-ft 0,0.5,1` (eval) and `--wise-ft 0.5` (export) name mixing weights α; `--average 3` the last three epoch
checkpoints, `--average 2,4,6` those epochs. The weights are computed in memory (models/weight_space.py) and evaluated or
exported like any other: LoRA runs with their adapters merged (α then scales the merged update), locked towers unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from biomedclip_cli.models.evaluation import Weights, load_model
from biomedclip_cli.problems import ProblemFound, error
from biomedclip_cli.runs.folder import checkpoint_epoch, epoch_checkpoints
from biomedclip_cli.runs.weights import resolve_checkpoint, start_weights

WISE_FT, AVERAGE = "--wise-ft", "--average"


def parse_alphas(text: str) -> list[float]:
    """The α values of a --wise-ft list ('0,0.25,0.5'), each between 0 and 1, in the order given (duplicates dropped)."""
    alphas: list[float] = []
    for part in (item.strip() for item in text.split(",")):
        try:
            alpha = float(part)
        except ValueError:
            alpha = -1.0
        if not 0.0 <= alpha <= 1.0:
            raise ProblemFound(error(WISE_FT, f"'{part}' is not a number from 0 to 1",
                                     "give the mixing weights as 0 (the start) to 1 (the run), e.g. --wise-ft 0,0.25,0.5,0.75,1"))
        if alpha not in alphas:
            alphas.append(alpha)
    return alphas


def chosen_checkpoints(run_dir: Path, spec: str) -> list[Path]:
    """The epoch checkpoints of an --average value: a count (the last K) or a comma-separated list of epochs."""
    checkpoints = epoch_checkpoints(run_dir)
    by_epoch = {checkpoint_epoch(path): path for path in checkpoints}
    parts = [part.strip() for part in spec.split(",")]
    if not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ProblemFound(error(AVERAGE, f"'{spec}' is neither a count nor a list of epochs",
                                 "e.g. --average 3 (the last three) or --average 2,4,6"))
    if len(parts) == 1:
        count = int(parts[0])
        if count < 2 or count > len(checkpoints):
            raise ProblemFound(error(AVERAGE, f"asks for the last {count} checkpoints and '{run_dir}' has {len(checkpoints)}",
                                     f"average 2 to {len(checkpoints)} of them" if len(checkpoints) >= 2 else "train it longer first"))
        return checkpoints[-count:]
    missing = [part for part in parts if int(part) not in by_epoch]
    if missing:
        raise ProblemFound(error(AVERAGE, f"'{run_dir}' has no epoch_{missing[0]}.pt",
                                 f"choose among epochs {', '.join(str(epoch) for epoch in sorted(by_epoch))}"))
    return [by_epoch[int(part)] for part in dict.fromkeys(parts)]


def state_of(weights: Weights) -> dict[str, Any]:
    """The weights as a state dict of their own (LoRA adapters merged), detached from any model."""
    model, _, _ = load_model(weights)
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def interpolations(run: Path, model: str, alphas: Sequence[float]) -> Iterator[Weights]:
    """The run's checkpoint (a run folder: its newest) interpolated with the run's starting weights at each α, one at a time."""
    from biomedclip_cli.models.weight_space import interpolated

    start = state_of(start_weights(run, model, WISE_FT))
    checkpoint = resolve_checkpoint(run)
    end = state_of(Weights(checkpoint.stem, model, str(checkpoint)))
    for alpha in alphas:
        yield Weights(f"α={alpha:g}", model, None, interpolated(start, end, alpha))


def soup(run_dir: Path, model: str, spec: str) -> Weights:
    """The uniform average of the run's epoch checkpoints that --average names."""
    from biomedclip_cli.models.weight_space import averaged

    checkpoints = chosen_checkpoints(run_dir, spec)
    epochs = ",".join(str(checkpoint_epoch(path)) for path in checkpoints)
    return Weights(f"soup of epochs {epochs}", model, None, averaged([state_of(Weights(p.stem, model, str(p))) for p in checkpoints]))
