"""What a training rank's data pipeline hands the model, for the pixel and filter tests: run as its own process, like a rank.

    python tests/rank_inputs.py OUT.json [--reader-only] -- WORKER_ARGS...

WORKER_ARGS are what a `bmclip train --dry-run` line passes after `-m biomedclip_cli.rank.worker`.
The script reads them as the worker does, has open_clip read its data as the worker has it read
(bmclip's image reader, sample guard and --where, rank/patches.py's read_data_as_bmclip), and pulls one epoch from
open_clip_train's own `get_data` (CSV or webdataset, one process, no data workers). The image
transform is only ToTensor and the tokenizer passes captions through, so what is recorded is exactly
what open_clip's transform gets from the reader: each image's size, the values across its middle row
and its top-left value, 0..255; and its caption. With --reader-only, the image reader and --where are
installed as bench-data installs them (no sample guard, nothing written). Tests call `rank_inputs`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from open_clip_train.data import get_data
from open_clip_train.params import parse_args
from torchvision.transforms import ToTensor
from typer.testing import CliRunner

from biomedclip_cli.cli import app
from biomedclip_cli.models.configs import register_with_open_clip
from biomedclip_cli.rank.patches import read_data_as_bmclip
from biomedclip_cli.rank.sample_guard import SampleGuard
from biomedclip_cli.rank.sample_selection import SampleSelection
from biomedclip_cli.rank.settings import pixel_settings, read_worker_argv

SCRIPT = Path(__file__).resolve()


def main(out: str, worker_args: list[str], reader_only: bool) -> None:
    settings, open_clip_args = read_worker_argv(worker_args)
    args = parse_args(open_clip_args)
    args.distributed, args.world_size, args.rank, args.local_rank, args.device = False, 1, 0, 0, "cpu"
    args.workers, args.batch_size, args.val_data = 0, 1, None
    register_with_open_clip()
    run_dir = None if reader_only else Path(args.logs) / args.name
    guard = SampleGuard(run_dir, settings.max_bad_samples) if run_dir is not None else None
    selection = SampleSelection.for_run(settings.sample_filter(), run_dir)
    read_data_as_bmclip(pixel_settings(settings), settings.scaled_decode, guard, args.train_num_samples, selection)
    data = get_data(args, (ToTensor(), ToTensor()), epoch=0, tokenizer=passing_captions_through)["train"]
    data.set_epoch(0)
    images = []
    for batch_images, captions in data.dataloader:
        pixels = np.rint(batch_images[0].numpy() * 255).astype(int)  # channels x rows x columns
        images.append({"size": [pixels.shape[2], pixels.shape[1]], "middle_row": pixels[0, pixels.shape[1] // 2].tolist(),
                       "top_left": int(pixels[0, 2, 2]), "caption": captions[0]})
    with open(out, "w", encoding="utf-8") as stream:
        json.dump(images, stream)


def passing_captions_through(texts: str | list[str]) -> list[str]:
    """A tokenizer that leaves captions as they are (open_clip calls it with one caption, or a list of one)."""
    return [texts] if isinstance(texts, str) else list(texts)


def rank_inputs(tmp_path: Path, *train_args: str, reader_only: bool = False) -> list[dict]:
    """The images (and captions) a rank's data pipeline gives the model for `bmclip train TRAIN_ARGS` (read through the dry-run line);
    `reader_only`: with bmclip's image reader (and --where) alone, as bench-data reads data."""
    dry = CliRunner().invoke(app, ["train", *train_args, "--model", "bmclip-tiny", "--dry-run", "--logs", str(tmp_path / "logs")],
                             catch_exceptions=False)
    assert dry.exit_code == 0, dry.stderr
    words = shlex.split(dry.stdout)
    worker_args = words[words.index("biomedclip_cli.rank.worker") + 1:]
    out = tmp_path / "inputs.json"
    result = subprocess.run([sys.executable, str(SCRIPT), str(out), *(["--reader-only"] if reader_only else []), "--", *worker_args[1:]],
                            capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(SCRIPT.parent.parent), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


if __name__ == "__main__":
    separator = sys.argv.index("--")
    main(sys.argv[1], sys.argv[separator + 1:], "--reader-only" in sys.argv[2:separator])
