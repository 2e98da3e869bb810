"""Fine-tuning options refused before anything starts: locked towers, LoRA, --val-zeroshot, --keep-best and local-dir: folders."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from run_folders import assert_refused

from biomedclip_cli.models.lora import LoraSettings
from biomedclip_cli.rank.epoch_hooks import ZeroShotPlan
from biomedclip_cli.rank.settings import lora_settings, read_worker_argv


def worker_and_open_clip_args(invoke, *args: str) -> tuple[list[str], list[str]]:
    """bmclip's worker options and open_clip's arguments in the command `bmclip train ARGS --dry-run` prints."""
    result = invoke("train", *args, "--dry-run")
    assert result.exit_code == 0, result.stderr
    line = shlex.split(result.stdout.strip().splitlines()[-1])
    words = line[line.index("biomedclip_cli.rank.worker") + 2:]
    return (words[:words.index("--")], words[words.index("--") + 1:]) if "--" in words else ([], words)


@pytest.mark.parametrize(("args", "expected"), [
    (("--lock-image-unlocked-groups", "2"), "--lock-image-unlocked-groups: needs --lock-image; add --lock-image"),
    (("--lock-text-unlocked-layers", "1"), "--lock-text-unlocked-layers: needs --lock-text"),
    (("--lora-alpha", "16"), "--lora-alpha: needs --lora-rank; add --lora-rank 8"),
    (("--lora-targets", "attn"), "--lora-targets: needs --lora-rank"),
    (("--lora-dropout", "0.1"), "--lora-dropout: needs --lora-rank"),
    (("--lora-rank", "8", "--lock-image"), "--lora-rank: already freezes both towers"),
    (("--lora-rank", "0"), "--lora-rank: input should be greater than 0"),
    (("--keep-best", "zeroshot-top1"), "--keep-best: needs --val-zeroshot"),
])
def test_fine_tuning_options_that_do_not_fit_are_refused_in_one_line(invoke, demo_data, args, expected):
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", *args, "--dry-run"), expected)


def test_an_unknown_keep_best_metric_names_the_known_ones(invoke, demo_data):
    result = invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny",
                    "--val-zeroshot", str(demo_data.heldout_csv), "--keep-best", "accuracy", "--dry-run")
    assert_refused(result, "--keep-best: unknown metric 'accuracy'; choose from zeroshot-top1, zeroshot-balanced-accuracy")


def test_locked_towers_reach_open_clip_as_its_own_flags(invoke, demo_data):
    own, open_clip_args = worker_and_open_clip_args(invoke, "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny",
                                                    "--lock-image", "--lock-image-unlocked-groups", "1",
                                                    "--lock-text", "--lock-text-unlocked-layers", "2")
    assert own == []
    assert "--lock-image" in open_clip_args and open_clip_args[open_clip_args.index("--lock-image-unlocked-groups") + 1] == "1"
    assert open_clip_args[open_clip_args.index("--lock-text-unlocked-layers") + 1] == "2"


def test_lora_and_zero_shot_settings_go_to_bmclips_worker_not_to_open_clip(invoke, demo_data):
    own, open_clip_args = worker_and_open_clip_args(
        invoke, "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--lora-rank", "4", "--lora-targets", "attn, c_fc",
        "--val-zeroshot", str(demo_data.heldout_csv), "--val-zeroshot-every", "2", "--keep-best", "zeroshot-balanced-accuracy")
    settings, _ = read_worker_argv([*own, "--"])
    assert lora_settings(settings) == LoraSettings(4, 8.0, 0.0, ("attn", "c_fc")), "alpha defaults to twice the rank"
    plan = ZeroShotPlan.of(settings)
    assert plan == ZeroShotPlan(str(demo_data.heldout_csv), "label", 2, "zeroshot-balanced-accuracy")
    assert json.loads(own[own.index("--settings") + 1]) == {"lora_rank": 4, "lora_targets": "attn, c_fc",
                                                            "val_zeroshot": str(demo_data.heldout_csv), "val_zeroshot_every": 2,
                                                            "keep_best": "zeroshot-balanced-accuracy"}
    assert not any(word.startswith(("--lora", "--val-zeroshot", "--keep-best")) for word in open_clip_args)


def test_a_val_zeroshot_csv_without_the_label_column_is_refused(invoke, demo_data):
    result = invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny",
                    "--val-zeroshot", str(demo_data.heldout_csv), "--val-zeroshot-label-column", "modality", "--dry-run")
    assert_refused(result, "--val-zeroshot-label-column: ")
    assert "has no column 'modality'" in result.stderr


def test_a_missing_val_zeroshot_csv_is_refused(invoke, demo_data, tmp_path: Path):
    result = invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny",
                    "--val-zeroshot", "nowhere.csv", "--dry-run")
    assert_refused(result, "--val-zeroshot: file 'nowhere.csv' does not exist")


def test_a_local_folder_without_weights_is_refused_naming_what_is_missing(invoke, demo_data, tmp_path: Path):
    folder = tmp_path / "biomedclip"
    folder.mkdir()
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", f"local-dir:{folder}", "--dry-run"),
                   f"--model local-dir:{folder}: '{folder}' has no open_clip_config.json")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 32}}))
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", f"local-dir:{folder}", "--dry-run"),
                   f"--model local-dir:{folder}: '{folder}' has no weights file")


def test_a_missing_local_folder_is_refused(invoke, demo_data):
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", "local-dir:models/nowhere", "--dry-run"),
                   "--model local-dir:models/nowhere: folder 'models/nowhere' does not exist")


# The traps of fine-tuning, said before launch

def test_frozen_weights_without_pretrained_ones_are_a_warning_naming_the_option(invoke, demo_data):
    for option in (("--lora-rank", "4"), ("--lock-image",)):
        result = invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", *option, "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert (f"bmclip: warning: {option[0]}: freezes weights of bmclip-tiny that no --pretrained gives, so they stay random and the "
                "run trains on top of noise; pass --pretrained TAG or FILE") in result.stderr


def siglip_folder(folder: Path) -> Path:
    """A local-dir: model whose config has SigLIP's logit bias (the tiny model's towers)."""
    from biomedclip_cli.models.config_lookup import model_config

    folder.mkdir()
    tiny = model_config("bmclip-tiny")
    assert tiny is not None
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {**tiny, "init_logit_bias": -10.0}}), encoding="utf-8")
    (folder / "open_clip_model.safetensors").write_bytes(b"")
    return folder


def test_a_siglip_model_needs_the_siglip_loss_and_the_clip_models_do_not_take_it(invoke, demo_data, tmp_path: Path):
    folder = siglip_folder(tmp_path / "tiny-siglip")
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", f"local-dir:{folder}", "--dry-run"),
                   f"--siglip: local-dir:{folder} is a SigLIP model (its weights have a logit bias) and needs open_clip's SigLIP loss; "
                   "the CLIP loss leaves the bias unused, which stops DDP; add -- --siglip")
    assert_refused(invoke("train", "--train-data", str(demo_data.train_csv), "--model", "bmclip-tiny", "--dry-run", "--", "--siglip"),
                   "--siglip: trains with the SigLIP loss, but bmclip-tiny has no logit bias for it")
    result = invoke("train", "--train-data", str(demo_data.train_csv), "--model", f"local-dir:{folder}", "--dry-run", "--", "--siglip")
    assert result.exit_code == 0, result.stderr
