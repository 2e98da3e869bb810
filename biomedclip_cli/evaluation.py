"""Zero-shot classification of labelled images with a trained (or pretrained) open_clip model."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from biomedclip_cli.problems import ProblemFound, error
from biomedclip_cli.run_folder import epoch_checkpoints

BIOMEDICAL_TEMPLATES = (
    "a {}.",
    "a {} image.",
    "an image of {}.",
    "a figure showing {}.",
    "a medical image: {}.",
    "a biomedical figure of {}.",
)


@dataclass(frozen=True)
class LabelledImages:
    """Image paths with their labels, read from a CSV."""

    paths: list[str]
    labels: list[str]

    @property
    def classnames(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))


@dataclass
class ZeroShotResult:
    """Accuracy of zero-shot classification over a labelled set."""

    samples: int
    top1: float
    top5: float | None
    per_class_recall: dict[str, float] = field(default_factory=dict)


def resolve_checkpoint(checkpoint: Path) -> Path:
    """A checkpoint file: the file itself, or the newest epoch_K.pt of a run folder."""
    if checkpoint.is_file():
        return checkpoint
    if checkpoint.is_dir():
        found = epoch_checkpoints(checkpoint)
        if found:
            return found[-1]
        raise ProblemFound(error("--checkpoint", f"run folder '{checkpoint}' has no checkpoints/epoch_K.pt", "train it first or pass a checkpoint file"))
    raise ProblemFound(error("--checkpoint", f"'{checkpoint}' does not exist", "pass a run folder or a checkpoint file"))


def read_labelled_images(path: Path, image_column: str, label_column: str) -> LabelledImages:
    """The image paths and labels of a CSV (the separator is sniffed from the header)."""
    from biomedclip_cli.checks.data import sniff_separator

    if not path.is_file():
        raise ProblemFound(error("--data", f"file '{path}' does not exist", "pass a CSV with image paths and labels"))
    with path.open(newline="", encoding="utf-8-sig") as stream:
        separator = sniff_separator(stream.readline())
        stream.seek(0)
        reader = csv.DictReader(stream, delimiter=separator)
        columns = reader.fieldnames or []
        for option, column in (("--image-column", image_column), ("--label-column", label_column)):
            if column not in columns:
                raise ProblemFound(error(option, f"'{path}' has no column '{column}' (columns: {', '.join(columns)})", f"pass {option} with one of them"))
        rows = [(row[image_column], row[label_column]) for row in reader if row.get(label_column)]
    if not rows:
        raise ProblemFound(error("--data", f"'{path}' has no labelled rows", f"fill in the '{label_column}' column"))
    return LabelledImages([p for p, _ in rows], [label for _, label in rows])


def zero_shot(model_name: str, checkpoint: Path | None, data: LabelledImages, templates: Sequence[str] = BIOMEDICAL_TEMPLATES,
              batch_size: int = 64, progress: Callable[[int], None] = lambda n: None) -> ZeroShotResult:
    """Classify every image by the nearest class prompt embedding and score it against its label."""
    import open_clip
    import torch
    from PIL import Image

    from biomedclip_cli.model_configs import register_with_open_clip

    register_with_open_clip()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=str(checkpoint) if checkpoint else None, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    classnames = data.classnames
    targets = torch.tensor([classnames.index(label) for label in data.labels])
    predictions = []
    with torch.no_grad():
        classifier = open_clip.build_zero_shot_classifier(model, tokenizer, classnames, list(templates), device=device)
        for start in range(0, len(data.paths), batch_size):
            paths = data.paths[start:start + batch_size]
            images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths]).to(device)
            features = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
            predictions.append((features @ classifier).topk(min(5, len(classnames)), dim=-1).indices.cpu())
            progress(len(paths))
    ranked = torch.cat(predictions)
    top1 = ranked[:, 0] == targets
    top5 = (ranked == targets[:, None]).any(dim=1) if len(classnames) > 5 else None
    recall = {name: float(top1[targets == i].float().mean()) for i, name in enumerate(classnames)}
    return ZeroShotResult(len(targets), float(top1.float().mean()), float(top5.float().mean()) if top5 is not None else None, recall)
