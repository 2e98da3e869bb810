"""Zero-shot and retrieval scores on similarity matrices whose answers are worked out by hand."""

from __future__ import annotations

import pytest
import torch

from biomedclip_cli.models.scores import retrieval_scores, zero_shot_scores

CLASSES = ["ct", "mri", "x-ray"]


def test_zero_shot_scores_count_a_hand_made_confusion():
    # true:       ct  ct  ct  mri mri x-ray ; predicted: ct ct mri mri ct x-ray
    logits = torch.tensor([[3, 1, 0], [2, 1, 0], [0, 2, 1], [0, 3, 1], [2, 1, 0], [0, 0, 1]], dtype=torch.float)
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    scores = zero_shot_scores(logits, targets, CLASSES)
    assert scores.confusion == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert scores.top1 == pytest.approx(4 / 6)
    assert scores.per_class_recall == pytest.approx({"ct": 2 / 3, "mri": 1 / 2, "x-ray": 1.0})
    assert scores.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert scores.top5 is None  # needs more than five classes


def test_a_class_without_samples_has_no_recall_and_is_left_out_of_balanced_accuracy():
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    scores = zero_shot_scores(logits, torch.tensor([0, 1]), CLASSES)
    assert scores.per_class_recall == {"ct": 1.0, "mri": 0.0, "x-ray": None}
    assert scores.balanced_accuracy == pytest.approx(0.5)


def test_top5_with_more_than_five_classes():
    classes = [f"c{i}" for i in range(7)]
    logits = torch.arange(7, dtype=torch.float).repeat(2, 1)  # ranking: c6 c5 c4 c3 c2 c1 c0
    scores = zero_shot_scores(logits, torch.tensor([2, 0]), classes)
    assert scores.top1 == 0.0
    assert scores.top5 == pytest.approx(0.5)


def test_retrieval_of_a_perfect_diagonal():
    scores = retrieval_scores(torch.eye(12), torch.arange(12))
    for direction in (scores.image_to_text, scores.text_to_image):
        assert direction.recall == {1: 1.0, 5: 1.0, 10: 1.0}
        assert direction.median_rank == 1.0


def test_retrieval_ranks_count_only_better_texts_and_identical_captions_are_one_text():
    # Three images; images 0 and 1 share caption 0, image 2 has caption 1.
    similarity = torch.tensor([[0.9, 0.1],
                               [0.2, 0.8],   # its caption (0) ranks second
                               [0.3, 0.7]])
    scores = retrieval_scores(similarity, torch.tensor([0, 0, 1]))
    assert (scores.images, scores.texts) == (3, 2)
    assert scores.image_to_text.recall[1] == pytest.approx(2 / 3)
    # text 0 is answered by image 0 (its best image); text 1 by image 2, which image 1 beats (0.8 > 0.7)
    assert scores.text_to_image.recall[1] == pytest.approx(1 / 2)
    assert scores.text_to_image.recall[5] == 1.0
    assert scores.text_to_image.median_rank == pytest.approx(1.5)
