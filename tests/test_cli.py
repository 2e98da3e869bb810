"""The command line as a whole: help, version, and start-up that never imports torch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import typer
from child_signals import default_signals
from conftest import REPO, run_bmclip

from biomedclip_cli import __version__
from biomedclip_cli.cli import app

HEAVY_MODULES = ("torch", "open_clip", "open_clip_train", "webdataset", "PIL", "numpy")


def imported_modules(*args: str) -> set[str]:
    """Top-level modules imported while running `bmclip ARGS` (from python -X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "biomedclip_cli", *args],
                            capture_output=True, text=True, cwd=REPO, check=True)
    return {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_help_lists_the_commands():
    result = run_bmclip("--help")
    assert result.returncode == 0
    for command in ("train", "resume", "runs", "eval", "demo-data", "env-check", "list-models", "report"):
        assert command in result.stdout


def test_version():
    result = run_bmclip("--version")
    assert result.stdout.strip() == f"bmclip {__version__}"


def test_help_and_version_import_no_torch():
    commands = [command.name for command in typer.main.get_command(app).commands.values()]
    assert len(commands) >= 11
    for args in (["--help"], ["--version"], *([name, "--help"] for name in commands)):
        modules = imported_modules(*args)
        assert "typer" in modules
        heavy = modules & set(HEAVY_MODULES)
        assert not heavy, f"bmclip {' '.join(args)} imported {heavy}"


def test_no_arguments_shows_help():
    result = run_bmclip()
    assert "Usage" in result.stdout + result.stderr


def test_ctrl_c_during_a_slow_preflight_is_one_line_and_status_130(tmp_path):
    """A hub that accepts the connection and never answers keeps preflight waiting; Ctrl-C ends it without a traceback."""
    with socket.create_server(("127.0.0.1", 0)) as silent_hub:
        silent_hub.settimeout(240)  # only a bound on a hang: the test goes on as soon as bmclip connects
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_ENDPOINT": f"http://127.0.0.1:{silent_hub.getsockname()[1]}",
               "HF_TOKEN": "hf_" + "a" * 34, "HF_HOME": str(tmp_path / "hf-home")}
        process = subprocess.Popen([sys.executable, "-m", "biomedclip_cli", "train", "--train-data", "hf://datasets/owner/name/{0..1}.tar",
                                    "--model", "bmclip-tiny", "--dry-run"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
        connection, _ = silent_hub.accept()
        with connection:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=240)
    assert (process.returncode, stdout, stderr) == (130, "", "bmclip: interrupted\n")


# Ctrl-C arrives while `import typer` runs, the CLI's first heavy import: sent from inside the import itself, so always in time.
INTERRUPT_DURING_IMPORT = """
import builtins, os, signal
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "typer":
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
from biomedclip_cli.entry import main
main()
"""


def test_ctrl_c_before_the_cli_has_finished_importing_is_one_line_and_status_130():
    result = subprocess.run([sys.executable, "-c", INTERRUPT_DURING_IMPORT, "--help"], env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120, check=False, preexec_fn=default_signals)
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "bmclip: interrupted\n")
