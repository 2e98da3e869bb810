"""The error file a rank leaves for torchrun: torchelastic's, with the rank that raised (what a run's summary names as its cause)."""

from __future__ import annotations

import json
import os

from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

from biomedclip_cli.rank.protocol import ERROR_FILE_VARIABLE


class RankErrorHandler(ErrorHandler):
    """torchelastic's error file writer, adding which rank raised (torchrun copies the first failed rank's file to bmclip's)."""

    def record_exception(self, e: BaseException) -> None:
        """Write the exception as torchelastic does, with this process's global rank in its extraInfo."""
        super().record_exception(e)
        path = os.environ.get(ERROR_FILE_VARIABLE)
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
            data["message"]["extraInfo"]["rank"] = os.environ.get("RANK", "0")
            with open(path, "w", encoding="utf-8") as stream:
                json.dump(data, stream)
