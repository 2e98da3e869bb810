"""Shell completion of option values (bash, zsh, fish: `bmclip --install-completion`): model names, run folders, BIOMEDICA sets,
YAML files and paths.

Each completer takes the word typed so far and returns the candidates that start with it. They run only when the shell asks
(Typer's _BMCLIP_COMPLETE mode), so their imports stay inside them and `bmclip --help` pays nothing for them. Completers list
files themselves, filtered by kind, since Typer passes the shell values, not "complete a file here".
"""

from __future__ import annotations

import os
from pathlib import Path

COMPLETE_VARIABLE = "_BMCLIP_COMPLETE"  # set by the shell's completion script when it asks bmclip for candidates
BASH_INSTRUCTION = "complete_bash"
YAML_SUFFIXES = (".yaml", ".yml")
TABLE_SUFFIXES = (".csv", ".tsv")
DEFAULT_LOGS = Path("logs")


def paths(incomplete: str, suffixes: tuple[str, ...] = (), folders_only: bool = False) -> list[str]:
    """Folders (with a trailing /) and files ending in one of `suffixes` (any, without) that complete the path typed so far;
    hidden ones only when a dot is typed."""
    stem = incomplete.rpartition("/")[2]
    typed_folder = incomplete[:len(incomplete) - len(stem)]
    try:
        entries = sorted(Path(typed_folder or ".").expanduser().iterdir())
    except OSError:
        return []
    found = [f"{incomplete}/"] if stem in (".", "..") else []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        if entry.is_dir():
            found.append(f"{typed_folder}{entry.name}/")
        elif not folders_only and (not suffixes or entry.name.endswith(suffixes)):
            found.append(f"{typed_folder}{entry.name}")
    return found


def config_files(incomplete: str) -> list[str]:
    """--config: YAML files and the folders on the way to them."""
    return paths(incomplete, YAML_SUFFIXES)


def tables(incomplete: str) -> list[str]:
    """CSV/TSV files (--val-zeroshot, eval --data)."""
    return paths(incomplete, TABLE_SUFFIXES)


def folders(incomplete: str) -> list[str]:
    """Folders alone (--logs)."""
    return paths(incomplete, folders_only=True)


def data_sources(incomplete: str) -> list[str]:
    """--train-data / --val-data: BIOMEDICA's sets by name, CSV/TSV files and shard .tar files."""
    from biomedclip_cli.hub.biomedica import SHORTCUTS

    return [name for name in SHORTCUTS if name.startswith(incomplete)] + paths(incomplete, (*TABLE_SUFFIXES, ".tar"))


def model_names(incomplete: str) -> list[str]:
    """--model: the curated biomedical models, open_clip's model names, and `local-dir:` followed by a folder."""
    from biomedclip_cli.models.catalog import CURATED
    from biomedclip_cli.models.config_lookup import HUB_PREFIX, LOCAL_PREFIX, known_model_names

    if incomplete.startswith(LOCAL_PREFIX):
        return [LOCAL_PREFIX + folder for folder in folders(incomplete.removeprefix(LOCAL_PREFIX))]
    names = dict.fromkeys([*(model.model for model in CURATED), *(known_model_names() or []), LOCAL_PREFIX, HUB_PREFIX])
    return [name for name in names if name.startswith(incomplete)]


def run_folders(incomplete: str) -> list[str]:
    """A run folder argument (resume, eval, report, export, init --from): the runs under ./logs first, then any folder."""
    runs = [f"{config.parent}/" for config in sorted(DEFAULT_LOGS.glob("*/bmclip.yaml"))]
    return list(dict.fromkeys(name for name in [*runs, *folders(incomplete)] if name.startswith(incomplete)))


def weight_files(incomplete: str) -> list[str]:
    """--pretrained: checkpoint and weight files (an open_clip tag is typed: bmclip list-models names them)."""
    return paths(incomplete, (".pt", ".pth", ".bin", ".safetensors"))


def checkpoints(incomplete: str) -> list[str]:
    """eval --checkpoint and export's argument: run folders, then checkpoint files (.pt) along the path typed."""
    return list(dict.fromkeys([*run_folders(incomplete), *paths(incomplete, (".pt",))]))


def rejoined_at_colons(words: list[str]) -> tuple[list[str], str]:
    """bash's words put back together where bash split them at ':' (COMP_WORDBREAKS): `biomedica`, `:`, `c` is `biomedica:c`.

    Returns the words and the part of the last one before bash's own current word (`biomedica:`): what bash keeps, so each
    candidate is handed back without it (as bash-completion's __ltrim_colon_completions does).
    """
    joined: list[str] = []
    glued = False  # the last word ended at a ':' bash split off
    kept = ""
    for word in words:
        if word == ":" and joined:
            joined[-1] += word
            glued, kept = True, joined[-1]
        elif glued:
            joined[-1] += word
            glued = False
        else:
            joined.append(word)
            kept = ""
    return joined, kept


def use_colon_aware_bash() -> None:
    """When bash asks for candidates, answer for the whole word around its colons (Typer's bash class sees `biomedica:c` as three
    words and completes `c`). Registered just before Typer reads the request, after it has registered its own class."""
    if os.environ.get(COMPLETE_VARIABLE) != BASH_INSTRUCTION:
        return
    from typer._click.shell_completion import CompletionItem, add_completion_class
    from typer._completion_classes import BashComplete

    class ColonAwareBashComplete(BashComplete):
        kept = ""

        def get_completion_args(self) -> tuple[list[str], str]:
            args, incomplete = super().get_completion_args()
            words, self.kept = rejoined_at_colons([*args, incomplete])
            return words[:-1], words[-1]

        def format_completion(self, item: CompletionItem) -> str:
            return super().format_completion(item).removeprefix(self.kept)

    add_completion_class(ColonAwareBashComplete, "bash")
