"""What open_clip_train 3.3 needs to train on current PyTorch, CPUs and BiomedCLIP-shaped models, and a readable training log.

Replacements only; rank/patches.py puts them in place.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

QUIETED_LOGGERS = ("torch", "urllib3", "PIL", "httpx", "httpx2", "httpcore", "huggingface_hub")


class CpuFriendlyDDP(torch.nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that drops CPU `device_ids`, which torch >= 2.x rejects for CPU modules.

    open_clip_train passes `device_ids=[device]` even when the device is the CPU (gloo ranks).
    """

    def __init__(self, module: torch.nn.Module, device_ids: list[Any] | None = None, *args: Any, **kwargs: Any) -> None:
        if device_ids and all(torch.device(d).type == "cpu" for d in device_ids):
            device_ids = None
        super().__init__(module, device_ids, *args, **kwargs)


def quiet_setup_logging(setup_logging: Callable[..., None], node_log: Path | None) -> Callable[..., None]:
    """open_clip's setup_logging, then library loggers put back to WARNING; on a node other than 0, also into its node log.

    open_clip sets every logger that exists to INFO, which makes torch print compiler statistics
    from every rank at exit and the HTTP client log every shard request; only open_clip's own lines
    (and bmclip's warnings about shards) belong in the training log. open_clip gives a log file to
    global rank 0 only (out.log); `node_log` gives the first rank of each other node its own.
    """

    def setup(log_file: str | None, level: int, include_host: bool = False) -> None:
        setup_logging(log_file or (str(node_log) if node_log else None), level, include_host)
        for name in [*QUIETED_LOGGERS, *logging.root.manager.loggerDict]:
            if name.split(".")[0] in QUIETED_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        if node_log is not None and not log_file:
            logging.info(f"bmclip: node {os.environ.get('GROUP_RANK')} of {os.environ.get('GROUP_WORLD_SIZE', '?')} nodes, "
                         f"host {socket.gethostname()}, global ranks from {os.environ.get('RANK')}")

    return setup


def name_bert_layers(arch_dict: dict[str, Any]) -> None:
    """Name BERT's layer list and embeddings in open_clip's table of Hugging Face architectures.

    open_clip's HFTextEncoder.lock(unlocked_layers=N) looks them up there, and its "bert" entry (the
    text tower of BiomedCLIP and PubMedBERT models) lacks them, so --lock-text-unlocked-layers fails
    with KeyError 'layer_attr'. BERT keeps them where RoBERTa does, whose entry has them.
    """
    arch_dict["bert"]["config_names"].setdefault("layer_attr", "layer")
    arch_dict["bert"]["config_names"].setdefault("token_embeddings_attr", "embeddings")
