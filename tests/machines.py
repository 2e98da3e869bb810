"""Machines for env-check: a base install without torch, and a PATH whose nvidia-smi replays a recorded machine.

The base install is a site-packages folder linking, from the current environment, each distribution that
bmclip's base requirements pull in (the whole closure, no extras). A Python started with `-I -S` and this
folder on sys.path cannot find torch, torchvision, open_clip or anything else the [train] extra brings,
exactly as after `pip install bmclip`.

The fake nvidia-smi prints the recorded banner or GPU query of one machine from
tests/fixtures/nvidia_smi/<case>/ (and rejects `compute_cap` where that driver did).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "nvidia_smi"

FAKE_NVIDIA_SMI = """#!{python} -I
import sys
from pathlib import Path

case = Path({case!r})
arguments = " ".join(sys.argv[1:])
if not arguments:
    name = "banner"
elif "--query-gpu=" in arguments:
    name = "query" if "compute_cap" in arguments else "query-old-driver"
else:
    sys.exit("fake nvidia-smi: unexpected arguments " + arguments)
sys.stdout.write((case / (name + ".txt")).read_text())
status = case / (name + ".exit")
sys.exit(int(status.read_text()) if status.exists() else 0)
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_requirements() -> list[str]:
    """The distribution names bmclip's pyproject lists as base dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text).name for text in project["dependencies"]]


def base_distributions() -> set[str]:
    """Every distribution the base dependencies need, transitively (markers evaluated here, extras left out)."""
    needed: set[str] = set()
    pending = base_requirements()
    while pending:
        name = _canonical(pending.pop())
        if name in needed:
            continue
        needed.add(name)
        for text in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return needed


def make_base_site(folder: Path) -> Path:
    """Fill `folder` with links to the base distributions' top-level files and metadata; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(base_distributions()):
        distribution = importlib.metadata.distribution(name)
        for top in {file.parts[0] for file in distribution.files or [] if file.parts[0] not in ("..", "__pycache__")}:
            link = folder / top
            if not link.exists():
                link.symlink_to(Path(distribution.locate_file(top)).resolve())
    return folder


BOOT = "import os, sys; sys.path[:0] = sys.argv.pop(1).split(os.pathsep); from biomedclip_cli.cli import main; main()"


def base_install_command(site: Path, *args: str, more_paths: tuple[Path, ...] = ()) -> list[str]:
    """The command line of `bmclip ARGS` on the base install: isolated mode (-I: no PYTHONPATH, no user site),
    no site-packages (-S), and sys.path made of this checkout, the base site and `more_paths` only."""
    paths = os.pathsep.join(str(path) for path in (REPO, site, *more_paths))
    return [sys.executable, "-I", "-S", "-c", BOOT, paths, *args]


def run_base_install(site: Path, *args: str, env: dict[str, str], more_paths: tuple[Path, ...] = (),
                     timeout: int = 60) -> subprocess.CompletedProcess[str]:
    """Run `bmclip ARGS` as on a machine where only the base install (no torch) is present."""
    return subprocess.run(base_install_command(site, *args, more_paths=more_paths), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def machine(folder: Path, case: str | None) -> dict[str, str]:
    """The environment of a machine whose only program on PATH is a fake nvidia-smi replaying `case` (None: no nvidia-smi).

    HOME and HF_HOME point into `folder` (no token of the person running the tests leaks in) and
    CUDA_VISIBLE_DEVICES hides any real GPU, so results do not depend on the machine the tests run on.
    """
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    if case is not None:
        script = bin_dir / "nvidia-smi"
        script.write_text(FAKE_NVIDIA_SMI.format(python=sys.executable, case=str(FIXTURES / case)))
        script.chmod(0o755)
    hf_home = folder / "hf-home"
    hf_home.mkdir(exist_ok=True)
    return {"PATH": str(bin_dir), "HOME": str(folder), "HF_HOME": str(hf_home), "CUDA_VISIBLE_DEVICES": "", "COLUMNS": "200"}
