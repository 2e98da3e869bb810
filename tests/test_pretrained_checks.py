"""`bmclip train --pretrained` takes what list-models lists (a tag, a checkpoint file, an hf-hub id) and checks it before launch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import write_fitting_checkpoint
from test_train_preflight import assert_refused, good_csv  # noqa: F401  (the fixture)

TRAIN = ("train", "--train-data", "train.csv")


def dry_run_line(invoke, *args: str) -> str:
    result = invoke(*TRAIN, *args, "--dry-run")
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_a_checkpoint_that_fits_passes(invoke, good_csv, prefix: str):
    write_fitting_checkpoint(Path("tiny.pt"), "bmclip-tiny", prefix=prefix)
    line = dry_run_line(invoke, "--model", "bmclip-tiny", "--pretrained", "tiny.pt")
    assert "--pretrained tiny.pt" in line and "--lr 5e-06" in line


def test_a_checkpoint_of_another_model_is_refused_and_its_model_named(invoke, good_csv):
    write_fitting_checkpoint(Path("vit-b-32.pt"), "ViT-B-32")
    assert_refused(invoke(*TRAIN, "--model", "ViT-B-16", "--pretrained", "vit-b-32.pt"),
                   "'vit-b-32.pt' does not fit --model ViT-B-16: 2 of its 302 tensors have other shapes "
                   "(visual.positional_embedding: 50x768 in the file, 197x768 in the model); "
                   "it looks like a ViT-B-32 checkpoint (same 151,277,313 values as: ViT-B-32, ViT-B-32-quickgelu); pass --model ViT-B-32")


def test_a_checkpoint_with_missing_tensors_says_how_many(invoke, good_csv):
    write_fitting_checkpoint(Path("tiny.pt"), "bmclip-tiny")
    checkpoint = torch.load("tiny.pt", weights_only=True)
    del checkpoint["state_dict"]["module.text_projection"]
    torch.save(checkpoint, "tiny.pt")
    assert_refused(invoke(*TRAIN, "--model", "bmclip-tiny", "--pretrained", "tiny.pt"),
                   "1 model tensors are missing (e.g. text_projection)")


def test_a_file_that_is_no_checkpoint_is_refused(invoke, good_csv):
    Path("weights.pt").write_text("not a checkpoint\n")
    assert_refused(invoke(*TRAIN, "--model", "bmclip-tiny", "--pretrained", "weights.pt"),
                   "--pretrained: 'weights.pt' is not a checkpoint PyTorch can read")


def test_an_unknown_tag_gets_the_closest_tags(invoke, good_csv):
    assert_refused(invoke(*TRAIN, "--model", "ViT-B-32", "--pretrained", "laion2b"),
                   "--pretrained: 'laion2b' is not a pretrained tag of ViT-B-32; did you mean laion2b_e16")


def test_a_tag_is_matched_the_way_open_clip_matches_it(invoke, good_csv):
    assert "--pretrained LAION2B-S34B-B79K" in dry_run_line(invoke, "--model", "ViT-B-32", "--pretrained", "LAION2B-S34B-B79K")


def test_a_model_without_pretrained_weights_has_no_tags(invoke, good_csv):
    assert_refused(invoke(*TRAIN, "--model", "bmclip-tiny", "--pretrained", "openai"),
                   "open_clip has no pretrained weights for bmclip-tiny")


def test_an_hf_hub_id_as_pretrained_becomes_the_model(invoke, good_csv):
    hub = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    line = dry_run_line(invoke, "--pretrained", hub)
    assert f"--model {hub}" in line and "--pretrained" not in line.split(" -- ", 1)[1]
    assert "--lr 5e-06" in line and "--name 2" in line
    result = invoke(*TRAIN, "--model", "RN50", "--pretrained", hub, "--dry-run")
    assert result.exit_code == 0 and f"--model: 'RN50' is replaced by {hub}" in result.stderr


def test_an_hf_hub_model_with_pretrained_weights_too_is_refused(invoke, good_csv):
    assert_refused(invoke(*TRAIN, "--model", "hf-hub:wisdomik/QuiltNet-B-32", "--pretrained", "openai"),
                   "brings its own weights, so --pretrained 'openai' would be ignored; drop --pretrained")
