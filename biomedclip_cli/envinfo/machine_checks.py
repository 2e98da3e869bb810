"""Checks of this machine that need no PyTorch: driver, Python, NCCL packages, disk space, Hugging Face token."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from biomedclip_cli.disk_space import existing_folder
from biomedclip_cli.envinfo.compat import Version, dotted
from biomedclip_cli.envinfo.nvidia_smi import DriverReport, SmiStatus
from biomedclip_cli.envinfo.policy import Advice

GIB = 1024**3
DISK_FAIL_BELOW = 2 * GIB
DISK_WARN_BELOW = 20 * GIB
NCCL_PACKAGE = re.compile(r"nvidia-nccl-cu\d+")


class Status(str, Enum):
    """The outcome of one check; any FAIL makes env-check exit with status 1."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of env-check's report: what was checked, the outcome, what was seen, and the one-line fix."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        """The check as plain JSON-ready values."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail, "fix": self.fix or None}


def driver_check(report: DriverReport) -> Check:
    """What nvidia-smi said: the driver and GPUs, or why there is none to use."""
    if report.status is SmiStatus.OK:
        archs = sorted({gpu.arch or "compute capability not reported" for gpu in report.gpus})
        cuda = f"CUDA {dotted(report.cuda_version)}" if report.cuda_version else "CUDA version not shown"
        return Check("nvidia driver", Status.PASS, f"driver {report.driver_version}, {cuda}, {len(report.gpus)} GPU(s): {', '.join(archs)}")
    if report.status is SmiStatus.MISSING:
        return Check("nvidia driver", Status.WARN, "nvidia-smi is not on PATH: no NVIDIA GPU to train on, only the CPU",
                     "on a GPU machine, install the NVIDIA driver (it brings nvidia-smi) or add its folder to PATH")
    return Check("nvidia driver", Status.WARN, f"{report.message}; recommending the CPU build",
                 "run nvidia-smi yourself: it must list the GPUs (reinstall or reload the NVIDIA driver if it does not)")


def recommendation_check(advice: Advice) -> Check:
    """Whether some PyTorch CUDA build in the table runs on these GPUs with this driver."""
    if advice.problem:
        return Check("pytorch build", Status.FAIL, advice.problem, advice.fix)
    pick = advice.pick
    detail = f"torch {pick.release.torch} + torchvision {pick.release.torchvision}, {pick.build} build"
    if pick.minor_version_compatibility:
        return Check("pytorch build", Status.WARN, f"{detail}, through CUDA minor-version compatibility",
                     "update the NVIDIA driver to run a build without relying on it")
    return Check("pytorch build", Status.PASS, detail)


def python_check(advice: Advice, python: Version = tuple(sys.version_info[:3])) -> Check:
    """Whether this Python has wheels of the recommended release."""
    release = advice.pick.release
    running = dotted(python)
    if release.supports_python(python):
        return Check("python", Status.PASS,
                     f"Python {running} is one of {release.python_range()}, the versions torch {release.torch} has wheels for")
    return Check("python", Status.WARN,
                 f"Python {running} is outside {release.python_range()}, the versions torch {release.torch} has wheels for",
                 f"make the venv with Python {dotted(release.python[1])} (e.g. python{dotted(release.python[1])} -m venv .venv)")


def _installed_distributions() -> dict[str, str]:
    """Installed distribution names (lower case, dashes) and versions, first on sys.path winning."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", distribution.metadata["Name"] or "").lower()
        found.setdefault(name, distribution.version)
    return found


def _required_by_torch() -> set[str]:
    """The distributions installed torch depends on (read from its metadata, without importing it)."""
    try:
        requirements = importlib.metadata.requires("torch") or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    names = (re.match(r"[A-Za-z0-9._-]+", requirement) for requirement in requirements)
    return {re.sub(r"[-_.]+", "-", name.group()).lower() for name in names if name is not None}


def nccl_check() -> Check:
    """More than one nvidia-nccl-cuXX package makes torch.distributed fail ('undefined symbol: ncclCommRegister')."""
    nccl = {name: version for name, version in _installed_distributions().items() if NCCL_PACKAGE.fullmatch(name)}
    listed = ", ".join(f"{name} {version}" for name, version in sorted(nccl.items()))
    if len(nccl) <= 1:
        return Check("nccl packages", Status.PASS, listed or "no nvidia-nccl package installed")
    keep = _required_by_torch() & set(nccl)
    fix = (f"pip uninstall -y {' '.join(sorted(set(nccl) - keep))}  (keeps {', '.join(sorted(keep))}, the one torch requires)" if keep
           else "pip uninstall -y every nvidia-nccl-cuXX but the one matching torch's CUDA major")
    return Check("nccl packages", Status.FAIL,
                 f"{listed} are all installed: torch may load the wrong one ('undefined symbol: ncclCommRegister')", fix)


def disk_status(free_bytes: int) -> Status:
    """FAIL below 2 GiB free (one checkpoint may not fit), WARN below 20 GiB (a run's checkpoints may not)."""
    if free_bytes < DISK_FAIL_BELOW:
        return Status.FAIL
    return Status.WARN if free_bytes < DISK_WARN_BELOW else Status.PASS


def disk_check(logs: Path) -> Check:
    """Free space where the run folders (--logs) will be written."""
    folder = existing_folder(logs)
    free = shutil.disk_usage(folder).free
    status = disk_status(free)
    detail = f"{free / GIB:.1f} GiB free for {logs} (on the disk of {folder})"
    fix = ("" if status is Status.PASS
           else "free some space or point --logs at a bigger disk (checkpoints of ViT-B models take about 1-2 GB each)")
    return Check("disk space", status, detail, fix)


def token_source(environ: Mapping[str, str]) -> str | None:
    """Where a Hugging Face token would be read from (an environment variable or the login file), never the token."""
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if environ.get(variable, "").strip():
            return f"the {variable} environment variable"
    home = Path(environ.get("HF_HOME") or Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    token_file = Path(environ.get("HF_TOKEN_PATH") or home / "token")
    try:
        if token_file.is_file() and token_file.read_text(encoding="utf-8").strip():
            return f"{token_file} (hf auth login)"
    except OSError:
        return None
    return None


def hf_token_check(environ: Mapping[str, str] = os.environ) -> Check:
    """Whether a Hugging Face token is available for streaming the gated BIOMEDICA dataset (its value is never shown)."""
    source = token_source(environ)
    if source:
        return Check("hugging face token", Status.PASS, f"found in {source} (value not shown)")
    return Check("hugging face token", Status.WARN,
                 "none found: streaming the gated BIOMEDICA dataset will be refused (local data needs none)",
                 "run `hf auth login`, or export HF_TOKEN in the job's environment")
