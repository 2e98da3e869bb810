"""bmclip's own open_clip model configs (JSON files in this folder), such as bmclip-tiny for CPU tests."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def register_with_open_clip() -> None:
    """Make open_clip.create_model and get_tokenizer know bmclip's configs (imports open_clip, so torch)."""
    import open_clip

    open_clip.add_model_config(FOLDER)
