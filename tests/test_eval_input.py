"""`bmclip eval` refuses bad input before loading any model: exit 2 and one line naming the option or file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from run_folders import make_run_folder

from biomedclip_cli.runs.folder import CONFIG_FILE


def assert_refused(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("bmclip: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert result.stdout == ""


@pytest.fixture
def figures() -> Path:
    """eval.csv in the working folder: two figures with label and caption."""
    Path("imgs").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (16, 16)).save(f"imgs/{name}.jpg")
    path = Path("eval.csv")
    path.write_text("filepath,label,caption\nimgs/a.jpg,ct,Axial CT of the chest.\nimgs/b.jpg,mri,Sagittal MRI of the knee.\n")
    return path


def test_data_file_missing(invoke):
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "nope.csv"), "--data: file 'nope.csv' does not exist")


def test_neither_labels_nor_captions(invoke, figures):
    Path("eval.csv").write_text("filepath,notes\nimgs/a.jpg,x\n")
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv"), "has neither a 'label' nor a 'caption' column")


def test_named_label_column_missing(invoke, figures):
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv", "--label-column", "modality"),
                   "--label-column: 'eval.csv' has no column 'modality' (columns: filepath, label, caption); "
                   "pass --label-column with one of them")


def test_missing_images_are_counted(invoke, figures):
    Path("imgs/b.jpg").unlink()
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv"),
                   "image 'imgs/b.jpg' named in 'eval.csv' does not exist (1 of 2 missing)")


def test_templates_need_a_placeholder(invoke, figures):
    Path("templates.txt").write_text("a {} image.\nan image\n")
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv", "--templates", "templates.txt"),
                   "every line needs exactly one {} for the class name (got 'an image')")


def test_classnames_must_cover_every_label(invoke, figures):
    Path("classes.txt").write_text("ct: computed tomography\n")
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv", "--classnames", "classes.txt"),
                   "--classnames: 'classes.txt' lacks the label 'mri' used in --data")


def test_checkpoint_that_is_neither_file_nor_tag(invoke, figures):
    assert_refused(invoke("eval", "--model", "ViT-B-32", "--data", "eval.csv", "--checkpoint", "laion2b"),
                   "--checkpoint: 'laion2b' is neither a file, a run folder, 'none', nor an open_clip tag of ViT-B-32; "
                   "did you mean laion2b_e16")


def test_model_needed_without_a_run_folder(invoke, figures):
    assert_refused(invoke("eval", "--data", "eval.csv", "--checkpoint", "none"), "--model: is needed")


def test_compare_needs_a_run_folder(invoke, figures):
    Path("somewhere").mkdir()
    assert_refused(invoke("eval", "--model", "bmclip-tiny", "--data", "eval.csv", "--compare", "somewhere"),
                   "--compare: 'somewhere' is not a bmclip run folder (no bmclip.yaml)")


def test_a_run_folder_with_a_broken_bmclip_yaml(invoke, figures, demo_data):
    run_dir = make_run_folder(demo_data.train_csv, name="broken")
    (run_dir / CONFIG_FILE).write_text("model: [bmclip-tiny\n")
    assert_refused(invoke("eval", "--data", "eval.csv", "--checkpoint", str(run_dir)), f"{run_dir / CONFIG_FILE}: is not valid YAML")
