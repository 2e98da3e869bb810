"""Scores of zero-shot classification and of image-text retrieval, computed from similarity matrices.

Pure functions of torch tensors: `bmclip eval` feeds them embeddings of real images and prompts;
tests feed them hand-made matrices whose answers are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECALL_AT = (1, 5, 10)


@dataclass(frozen=True)
class ZeroShotScores:
    """How well images were classified by their nearest class prompt."""

    samples: int
    classnames: list[str]
    top1: float
    top5: float | None
    balanced_accuracy: float
    per_class_recall: dict[str, float | None]
    per_class_samples: dict[str, int]
    confusion: list[list[int]] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for --json (confusion rows are true classes, columns predicted, in `classnames` order)."""
        return {"samples": self.samples, "top1": self.top1, "top5": self.top5, "balanced_accuracy": self.balanced_accuracy,
                "per_class_recall": self.per_class_recall, "per_class_samples": self.per_class_samples,
                "classnames": self.classnames, "confusion": self.confusion}


@dataclass(frozen=True)
class DirectionScores:
    """Retrieval in one direction: Recall@K (share of queries whose match ranks in the first K) and the median rank."""

    queries: int
    recall: dict[int, float]
    median_rank: float


@dataclass(frozen=True)
class RetrievalScores:
    """Image-to-text and text-to-image retrieval over a set of image-caption pairs."""

    images: int
    texts: int
    image_to_text: DirectionScores
    text_to_image: DirectionScores

    def as_dict(self) -> dict[str, Any]:
        """Plain values for --json."""
        def direction(scores: DirectionScores) -> dict[str, Any]:
            return {"queries": scores.queries, **{f"R@{k}": v for k, v in scores.recall.items()}, "median_rank": scores.median_rank}

        return {"images": self.images, "texts": self.texts, "image_to_text": direction(self.image_to_text),
                "text_to_image": direction(self.text_to_image)}


def _share(flags: Any) -> float:
    """The share of true values in a boolean tensor, as an exact Python fraction (0.68, not 0.6800000071525574)."""
    return int(flags.sum()) / len(flags) if len(flags) else 0.0


def zero_shot_scores(logits: Any, targets: Any, classnames: list[str]) -> ZeroShotScores:
    """Top-1/top-5 accuracy, balanced accuracy (mean recall over classes that have samples), per-class recall, confusion.

    `logits` is images x classes, `targets` the true class index of each image.
    """
    import torch

    predicted = logits.argmax(dim=1)
    correct = predicted == targets
    classes = len(classnames)
    top5 = None
    if classes > 5:
        top5 = _share((logits.topk(5, dim=1).indices == targets[:, None]).any(dim=1))
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion.index_put_((targets, predicted), torch.ones_like(targets), accumulate=True)
    counts = confusion.sum(dim=1)
    recall = {name: (int(confusion[i, i]) / int(counts[i]) if counts[i] else None) for i, name in enumerate(classnames)}
    present = [value for value in recall.values() if value is not None]
    return ZeroShotScores(len(targets), list(classnames), _share(correct), top5, sum(present) / len(present), recall,
                          {name: int(counts[i]) for i, name in enumerate(classnames)}, confusion.tolist())


def _direction(ranks: Any) -> DirectionScores:
    import torch

    ranks = ranks.float()
    return DirectionScores(len(ranks), {k: _share(ranks <= k) for k in RECALL_AT}, float(torch.quantile(ranks, 0.5)))


def retrieval_scores(similarity: Any, text_of_image: Any) -> RetrievalScores:
    """Recall@1/5/10 and median rank (1 = first) both ways.

    `similarity` is images x distinct texts, `text_of_image` the index of each image's caption.
    Identical captions are one text, so an image's caption that other images share is not a miss,
    and a text query is answered by the best-ranked image it belongs to.
    """
    import torch

    images, texts = similarity.shape
    true_scores = similarity[torch.arange(images), text_of_image]
    image_ranks = 1 + (similarity > true_scores[:, None]).sum(dim=1)
    belongs = torch.zeros(images, texts, dtype=torch.bool)
    belongs[torch.arange(images), text_of_image] = True
    best_match = similarity.masked_fill(~belongs, float("-inf")).max(dim=0).values
    text_ranks = 1 + ((similarity > best_match[None, :]) & ~belongs).sum(dim=0)
    return RetrievalScores(images, texts, _direction(image_ranks), _direction(text_ranks))
