"""Evaluate open_clip weights on your own figures: zero-shot classification by label, retrieval by caption.

A CSV names the images and, per row, a label (for zero-shot classification) and/or a caption (for
image-text retrieval). Which weights a name means (a run folder, a checkpoint, a tag) is decided in
runs/weights.py; this module scores a model/pretrained pair.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biomedclip_cli.models.scores import RetrievalScores, ZeroShotScores, retrieval_scores, zero_shot_scores
from biomedclip_cli.pixel_policy import PixelSettings
from biomedclip_cli.problems import ProblemFound, error

BIOMEDICAL_TEMPLATES = (
    "a {}.",
    "a {} image.",
    "an image of {}.",
    "a figure showing {}.",
    "a medical image: {}.",
    "a biomedical figure of {}.",
)
DEFAULT_LABEL_COLUMN, DEFAULT_CAPTION_COLUMN = "label", "caption"


@dataclass(frozen=True)
class EvalSet:
    """Image paths with their labels and/or captions, read from a CSV."""

    paths: list[str]
    labels: list[str] | None
    captions: list[str] | None


@dataclass(frozen=True)
class Classes:
    """The classes to choose from: labels as they appear in the CSV, and the names put into the prompts."""

    labels: list[str]
    prompt_names: list[str]


@dataclass(frozen=True)
class Weights:
    """One set of weights to evaluate: what the user named, and the open_clip model/pretrained it becomes; or, with `state`,
    the weights themselves (a WiSE-FT interpolation, a soup: models/weight_space.py)."""

    name: str
    model: str
    pretrained: str | None
    state: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EvalResult:
    """The scores of one set of weights."""

    weights: Weights
    zero_shot: ZeroShotScores | None
    retrieval: RetrievalScores | None


def _columns_problem(path: Path, option: str, column: str, columns: list[str]) -> ProblemFound:
    return ProblemFound(error(option, f"'{path}' has no column '{column}' (columns: {', '.join(columns)})",
                              f"pass {option} with one of them"))


def read_eval_set(path: Path, image_column: str, label_column: str | None, caption_column: str | None) -> EvalSet:
    """The CSV's images with their labels and captions (the separator is sniffed from the header).

    A column named explicitly must exist; otherwise `label` and `caption` are used when present.
    Rows need every column in use filled in; the images must exist.
    """
    from biomedclip_cli.data.csv_inspection import sniff_separator

    if not path.is_file():
        raise ProblemFound(error("--data", f"file '{path}' does not exist", "pass a CSV with image paths and labels or captions",
                                 local_only=True))
    with path.open(newline="", encoding="utf-8-sig") as stream:
        separator = sniff_separator(stream.readline())
        stream.seek(0)
        reader = csv.DictReader(stream, delimiter=separator)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if image_column not in columns:
        raise _columns_problem(path, "--image-column", image_column, columns)
    found: dict[str, str | None] = {}
    for option, given, default in (("--label-column", label_column, DEFAULT_LABEL_COLUMN),
                                   ("--caption-column", caption_column, DEFAULT_CAPTION_COLUMN)):
        if given is not None and given not in columns:
            raise _columns_problem(path, option, given, columns)
        found[option] = given or (default if default in columns else None)
    label_key, caption_key = found["--label-column"], found["--caption-column"]
    if label_key is None and caption_key is None:
        raise ProblemFound(error("--data", f"'{path}' has neither a '{DEFAULT_LABEL_COLUMN}' nor a '{DEFAULT_CAPTION_COLUMN}' column "
                                 f"(columns: {', '.join(columns)})",
                                 "name the column of class labels with --label-column, or of captions with --caption-column"))
    keys = [key for key in (label_key, caption_key) if key]
    rows = [row for row in rows if all((row.get(key) or "").strip() for key in keys)]
    if not rows:
        raise ProblemFound(error("--data", f"'{path}' has no rows with {' and '.join(repr(k) for k in keys)} filled in",
                                 "fill in the column(s)"))
    missing = [row[image_column] for row in rows if not Path(row[image_column]).is_file()]
    if missing:
        raise ProblemFound(error("--data", f"image '{missing[0]}' named in '{path}' does not exist ({len(missing)} of {len(rows)} missing)",
                                 "image paths are read relative to the folder you run bmclip in", local_only=True))
    return EvalSet([row[image_column] for row in rows], [row[label_key] for row in rows] if label_key else None,
                   [row[caption_key] for row in rows] if caption_key else None)


def read_classnames(path: Path | None, labels: Sequence[str]) -> Classes:
    """The classes: every line of the --classnames file as `label` or `label: name used in prompts`; else the CSV's labels, sorted."""
    if path is None:
        names = sorted(set(labels))
        return Classes(names, names)
    if not path.is_file():
        raise ProblemFound(error("--classnames", f"file '{path}' does not exist", "pass a text file with one class per line"))
    mapping: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            label, _, prompt_name = line.partition(":")
            mapping[label.strip()] = prompt_name.strip() or label.strip()
    unknown = sorted(set(labels) - set(mapping))
    if unknown:
        raise ProblemFound(error("--classnames", f"'{path}' lacks the label '{unknown[0]}' used in --data ({len(unknown)} missing)",
                                 "add one line per label: `label` or `label: name used in prompts`"))
    return Classes(list(mapping), list(mapping.values()))


def read_templates(path: Path | None) -> list[str]:
    """Prompt templates, one per line with `{}` where the class name goes; the biomedical defaults without a file."""
    if path is None:
        return list(BIOMEDICAL_TEMPLATES)
    if not path.is_file():
        raise ProblemFound(error("--templates", f"file '{path}' does not exist",
                                 "pass a text file with one template per line, e.g. 'a {} image.'"))
    templates = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    without = next((t for t in templates if t.count("{}") != 1), None)
    if without is not None or not templates:
        raise ProblemFound(error("--templates", f"'{path}': every line needs exactly one {{}} for the class name (got {without!r})",
                                 "write templates such as 'a {} image.'"))
    return templates


def load_model(weights: Weights, device: str = "cpu") -> tuple[Any, Any, Any]:
    """The model of these weights in eval mode, with its eval preprocessing and tokenizer."""
    import open_clip
    import torch

    from biomedclip_cli.models.checkpoint_loading import model_with_state, model_with_weights
    from biomedclip_cli.models.configs import register_with_open_clip

    register_with_open_clip()
    torch.manual_seed(0)  # the untrained model is the same every time
    if weights.state is not None:
        model, preprocess = model_with_state(weights.model, weights.state, device)
    elif weights.pretrained and Path(weights.pretrained).is_file():
        # bmclip loads files itself: open_clip ignores `pretrained` for hf-hub:/local-dir: models and cannot load LoRA checkpoints
        model, preprocess, _ = model_with_weights(weights.model, Path(weights.pretrained), device)
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(weights.model, pretrained=weights.pretrained, device=device)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(weights.model)


class _Images:
    """The eval set's images read as training reads them (data/pixels/),
    preprocessed for the model (a map-style dataset for torch's DataLoader)."""

    def __init__(self, paths: list[str], preprocess: Callable[[Any], Any], pixels: PixelSettings) -> None:
        self.paths, self.preprocess, self.pixels = paths, preprocess, pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        from biomedclip_cli.data.pixels.reader import read_rgb

        return self.preprocess(read_rgb(self.paths[index], self.pixels))


def _image_features(model: Any, preprocess: Any, paths: list[str], pixels: PixelSettings, device: str, batch_size: int, workers: int,
                    progress: Callable[[int], None], input_dtype: Any = None) -> Any:
    import torch

    dataset: Any = _Images(paths, preprocess, pixels)  # a map-style dataset by duck typing (torch is imported only here)
    loader: Any = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    features = []
    for images in loader:
        features.append(torch.nn.functional.normalize(model.encode_image(images.to(device, dtype=input_dtype)), dim=-1).float().cpu())
        progress(len(images))
    return torch.cat(features)


def _text_features(model: Any, tokenizer: Any, texts: list[str], device: str, batch_size: int) -> Any:
    import torch

    features = [torch.nn.functional.normalize(model.encode_text(tokenizer(texts[i:i + batch_size]).to(device)), dim=-1).float().cpu()
                for i in range(0, len(texts), batch_size)]
    return torch.cat(features)


def score_model(model: Any, preprocess: Any, tokenizer: Any, data: EvalSet, classes: Classes | None, templates: Sequence[str], *,
                pixels: PixelSettings, device: Any = "cpu", batch_size: int = 64, workers: int = 0, input_dtype: Any = None,
                progress: Callable[[int], None] = lambda n: None) -> tuple[ZeroShotScores | None, RetrievalScores | None]:
    """Zero-shot scores (when the set has labels) and retrieval scores (when it has captions) of a built model in eval mode.

    Shared by `bmclip eval` and the --val-zeroshot evaluation inside training, so that both report the same numbers;
    `pixels` reads the images as the run trained on them.
    """
    import open_clip
    import torch

    with torch.no_grad():
        images = _image_features(model, preprocess, data.paths, pixels, device, batch_size, workers, progress, input_dtype)
        zero_shot = retrieval = None
        if data.labels is not None and classes is not None:
            classifier = open_clip.build_zero_shot_classifier(model, tokenizer, classes.prompt_names, list(templates), device=device)
            targets = torch.tensor([classes.labels.index(label) for label in data.labels])
            zero_shot = zero_shot_scores(images @ classifier.float().cpu(), targets, classes.labels)
        if data.captions is not None:
            texts = list(dict.fromkeys(data.captions))
            index = {text: i for i, text in enumerate(texts)}
            captions = _text_features(model, tokenizer, texts, device, batch_size)
            retrieval = retrieval_scores(images @ captions.T, torch.tensor([index[c] for c in data.captions]))
    return zero_shot, retrieval


def evaluate(weights: Weights, data: EvalSet, classes: Classes | None, templates: Sequence[str], *, pixels: PixelSettings,
             device: str = "cpu", batch_size: int = 64, workers: int = 0, progress: Callable[[int], None] = lambda n: None) -> EvalResult:
    """Zero-shot scores (when the set has labels) and retrieval scores (when it has captions) of one set of weights."""
    model, preprocess, tokenizer = load_model(weights, device)
    zero_shot, retrieval = score_model(model, preprocess, tokenizer, data, classes, templates, pixels=pixels, device=device,
                                       batch_size=batch_size, workers=workers, progress=progress)
    return EvalResult(weights, zero_shot, retrieval)
