"""What a training rank's data pipeline hands the model, for the pixel tests: run as its own process, like a rank.

    python tests/rank_inputs.py OUT.json [--reader-only] -- WORKER_ARGS...

WORKER_ARGS are what a `bmclip train --dry-run` line passes after `-m biomedclip_cli.rank.worker`.
The script reads them as the worker does, has open_clip read its data as the worker has it read
(bmclip's image reader and sample guard, rank/patches.py's read_data_as_bmclip), and pulls one epoch from
open_clip_train's own `get_data` (CSV or webdataset, one process, no data workers). The image
transform is only ToTensor, so what is recorded is exactly what open_clip's transform gets from the
reader: each image's size, the values across its middle row and its top-left value, 0..255.
With --reader-only, only the image reader is installed, as bench-data installs it (no sample guard).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import open_clip
from open_clip_train.data import get_data
from open_clip_train.params import parse_args
from torchvision.transforms import ToTensor

from biomedclip_cli.models.configs import register_with_open_clip
from biomedclip_cli.rank.patches import read_data_as_bmclip
from biomedclip_cli.rank.sample_guard import SampleGuard
from biomedclip_cli.rank.settings import pixel_settings, read_worker_argv


def main(out: str, worker_args: list[str], reader_only: bool) -> None:
    settings, open_clip_args = read_worker_argv(worker_args)
    args = parse_args(open_clip_args)
    args.distributed, args.world_size, args.rank, args.local_rank, args.device = False, 1, 0, 0, "cpu"
    args.workers, args.batch_size, args.val_data = 0, 1, None
    register_with_open_clip()
    guard = None if reader_only else SampleGuard(Path(args.logs) / args.name, settings.max_bad_samples)
    read_data_as_bmclip(pixel_settings(settings), settings.scaled_decode, guard, args.train_num_samples)
    data = get_data(args, (ToTensor(), ToTensor()), epoch=0, tokenizer=open_clip.get_tokenizer(args.model))["train"]
    data.set_epoch(0)
    images = []
    for batch_images, _ in data.dataloader:
        pixels = np.rint(batch_images[0].numpy() * 255).astype(int)  # channels x rows x columns
        images.append({"size": [pixels.shape[2], pixels.shape[1]], "middle_row": pixels[0, pixels.shape[1] // 2].tolist(),
                       "top_left": int(pixels[0, 2, 2])})
    with open(out, "w", encoding="utf-8") as stream:
        json.dump(images, stream)


if __name__ == "__main__":
    separator = sys.argv.index("--")
    main(sys.argv[1], sys.argv[separator + 1:], "--reader-only" in sys.argv[2:separator])
