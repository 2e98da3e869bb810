"""The error file a rank leaves for torchrun: torchelastic's, with the rank that raised (what a run's summary names as its cause)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

from biomedclip_cli.partial_files import write_atomically
from biomedclip_cli.rank.protocol import ERROR_FILE_VARIABLE, FAILURE_RECORD_VARIABLE, RANK_LOGS


def failure_record(run_dir: Path, rank: int) -> Path:
    """Where rank `rank` keeps a copy of its error record in the run folder."""
    return run_dir / RANK_LOGS / f"failure-rank-{rank}.json"


class RankErrorHandler(ErrorHandler):
    """torchelastic's error file writer, adding which rank raised (torchrun copies the first failed rank's file to bmclip's)."""

    def record_exception(self, e: BaseException) -> None:
        """Write the exception as torchelastic does, with this process's global rank in its extraInfo; a copy in the run folder
        where the worker named one (FAILURE_RECORD_VARIABLE)."""
        super().record_exception(e)
        path = os.environ.get(ERROR_FILE_VARIABLE)
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
            data["message"]["extraInfo"]["rank"] = os.environ.get("RANK", "0")
            with open(path, "w", encoding="utf-8") as stream:
                json.dump(data, stream)
            copy = os.environ.get(FAILURE_RECORD_VARIABLE)
            if copy:
                write_atomically(Path(copy), json.dumps(data))
