"""Shell completion: a real bash sources `bmclip --show-completion bash` and completes model names, YAML files, run folders,
BIOMEDICA sets and init's scenarios; zsh and fish get the same candidates through the protocol their scripts speak."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

VENV_BIN = str(Path(sys.executable).parent)  # where `bmclip` is installed, as on a user's PATH


def shell_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PYTHONPATH": str(REPO), **extra}


def bash_completes(line: str, cwd: Path) -> list[str]:
    """What bash offers for the last word of `line` (or a new word after a trailing space), through bmclip's completion script."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    script = ('source <(bmclip --show-completion bash)\n'
              f'COMP_WORDS=({" ".join(repr(word) for word in words)}); COMP_CWORD={len(words) - 1}\n'
              '_bmclip_completion bmclip\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd, env=shell_env(), timeout=120, check=True)
    return [line for line in result.stdout.splitlines() if line]


class InteractiveBash:
    """A real interactive bash on a pseudo-terminal with bmclip's completion sourced: readline splits words as a user's bash
    does (at ':' too), and Tab completes. `bmclip` itself is a shell function printing the line it gets, so Enter shows
    what the completion typed; the completion script still runs the installed bmclip for candidates."""

    def __init__(self, cwd: Path) -> None:
        from typer.completion import get_completion_script

        script = cwd / ".bmclip-completion.bash"
        script.write_text(get_completion_script(prog_name="bmclip", complete_var="_BMCLIP_COMPLETE", shell="bash"))
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], stdin=child, stdout=child, stderr=child, cwd=cwd,
                                        env=shell_env(PS1="$ ", TERM="dumb", INPUTRC="/dev/null"), start_new_session=True)
        os.close(child)
        self.seen = ""
        self.type(f"source {script.name}; bmclip() {{ printf 'TY''PED:%s|\\n' \"$*\"; }}; echo SOUR''CED\n")
        self.read_until("SOURCED")

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def read_until(self, text: str) -> str:
        """What bash prints up to `text` (waiting for it: a bound on a hang only, it goes on as soon as it comes)."""
        deadline = time.monotonic() + 120
        while text not in self.seen:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no {text!r} in {self.seen[-2000:]!r}"
            if select.select([self.fd], [], [], 1)[0]:
                self.seen += os.read(self.fd, 4096).decode(errors="replace")
        before, self.seen = self.seen.split(text, 1)
        return before

    def tab_completes(self, line: str) -> str:
        """The command line after typing `line` and one Tab, as bmclip receives it."""
        self.type(line + "\t\n")
        self.read_until("TYPED:")
        return "bmclip " + self.read_until("|")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self.fd)


@pytest.fixture
def bash(workspace: Path) -> Iterator[InteractiveBash]:
    session = InteractiveBash(workspace)
    yield session
    session.close()


def test_a_users_bash_completes_words_with_colons_whole(bash: InteractiveBash):
    assert bash.tab_completes("bmclip train --train-data biomedica:c") == "bmclip train --train-data biomedica:commercial"
    assert bash.tab_completes("bmclip train --train-data biomedica:n") == "bmclip train --train-data biomedica:noncommercial"
    assert bash.tab_completes("bmclip eval --model hf-hub:microsoft/Bio") == \
        "bmclip eval --model hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    assert bash.tab_completes("bmclip train --model local-dir:we") == "bmclip train --model local-dir:weights/"
    assert bash.tab_completes("bmclip train --config tr") == "bmclip train --config train.yaml"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A project folder: two configs, a data CSV, a plain text file, and a run folder under logs/."""
    for name in ("train.yaml", "lora.yml", "notes.txt", "data/train.csv", "logs/run1/bmclip.yaml", "logs/not-a-run/x.txt",
                 "weights/biomedclip.safetensors", "weights/epoch_3.pt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    return tmp_path


def test_bash_completes_model_names_open_clips_and_the_biomedical_ones(workspace: Path):
    assert {"ViT-B-16", "ViT-B-32"} <= set(bash_completes("bmclip train --model ViT-B-", workspace))
    assert "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224" in bash_completes("bmclip eval --model hf-hub:mi", workspace)
    assert bash_completes("bmclip train --model local-dir:da", workspace) == ["local-dir:data/"]
    assert bash_completes("bmclip train --pretrained weights/", workspace) == ["weights/biomedclip.safetensors", "weights/epoch_3.pt"]


def test_bash_completes_yaml_files_for_config_and_run_folders_for_the_commands_that_take_one(workspace: Path):
    assert bash_completes("bmclip train --config ", workspace) == ["data/", "logs/", "lora.yml", "train.yaml", "weights/"]
    assert bash_completes("bmclip resume ", workspace)[0] == "logs/run1/"
    assert bash_completes("bmclip report logs/", workspace) == ["logs/run1/", "logs/not-a-run/"]
    assert bash_completes("bmclip init --from logs/r", workspace) == ["logs/run1/"]
    assert bash_completes("bmclip resume ..", workspace) == ["../"]


def test_bash_completes_biomedica_sets_data_files_and_init_scenarios(workspace: Path):
    assert bash_completes("bmclip train --train-data bio", workspace) == [
        "biomedica:commercial", "biomedica:noncommercial", "biomedica:other", "biomedica:all"]
    assert bash_completes("bmclip slurm-gen --train-data data/", workspace) == ["data/train.csv"]
    assert bash_completes("bmclip init biomedclip-l", workspace) == ["biomedclip-locked", "biomedclip-lora"]


def test_zsh_and_fish_scripts_ask_bmclip_for_the_same_candidates(workspace: Path):
    from typer.completion import get_completion_script

    for shell, marker in (("zsh", "compdef _bmclip_completion bmclip"), ("fish", "complete --command bmclip")):
        assert marker in get_completion_script(prog_name="bmclip", complete_var="_BMCLIP_COMPLETE", shell=shell)
    asked = {"_TYPER_COMPLETE_ARGS": "bmclip train --config tr", "_BMCLIP_COMPLETE": "complete_zsh"}
    zsh = subprocess.run(["bmclip"], capture_output=True, text=True, cwd=workspace, env=shell_env(**asked), check=True)
    assert zsh.stdout.startswith("_arguments") and '"train.yaml"' in zsh.stdout
    asked = {"_TYPER_COMPLETE_ARGS": "bmclip resume ", "_BMCLIP_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    fish = subprocess.run(["bmclip"], capture_output=True, text=True, cwd=workspace, env=shell_env(**asked), check=True)
    assert fish.stdout.splitlines()[0] == "logs/run1/"
