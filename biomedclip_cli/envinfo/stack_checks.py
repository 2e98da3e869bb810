"""Checks of the installed training stack: torch against the driver and GPUs, torchvision, open_clip, webdataset.

This is the only env-check module that imports torch, and it does so once, in `installed_checks`, after
`torch_installed()` has found it without importing it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from types import ModuleType

from biomedclip_cli.envinfo.compat import CPU_BUILD, CompatTable, Version, covers, dotted, parse_version
from biomedclip_cli.envinfo.machine_checks import Check, Status
from biomedclip_cli.envinfo.nvidia_smi import DriverReport
from biomedclip_cli.envinfo.policy import Advice

OPEN_CLIP_DISTRIBUTION = "open_clip_torch"
TRAINING_EXTRA = "training"


def torch_installed() -> bool:
    """Whether torch can be imported, found without importing it."""
    return importlib.util.find_spec("torch") is not None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cuda(text: str | None) -> Version | None:
    """'12.8' -> (12, 8); None for CPU builds."""
    return tuple(parse_version(text)[:2]) if text else None


def _torch_build(torch: ModuleType) -> str:
    """The wheel build of the installed torch: 'cu130', or 'cpu'."""
    cuda = _cuda(torch.version.cuda)
    return f"cu{cuda[0]}{cuda[1]}" if cuda else CPU_BUILD


def torch_build_check(torch: ModuleType, table: CompatTable, report: DriverReport, advice: Advice) -> Check:
    """The installed torch against the driver: a CUDA build newer than the driver supports, or a CPU build beside GPUs."""
    name = f"torch {torch.__version__}"
    cuda = _cuda(torch.version.cuda)
    if cuda is None:
        if report.gpus:
            return Check("pytorch", Status.FAIL, f"{name} is a CPU-only build but nvidia-smi lists {len(report.gpus)} GPU(s) "
                                                 "('Torch not compiled with CUDA enabled')", advice.pick.command)
        return Check("pytorch", Status.PASS, f"{name}, CPU build")
    if not report.gpus:
        return Check("pytorch", Status.PASS, f"{name}, CUDA {dotted(cuda)} build; no NVIDIA GPU here, so it runs on the CPU")
    if report.cuda_version is None:
        return Check("pytorch", Status.WARN, f"{name}, CUDA {dotted(cuda)} build; the driver's CUDA version is unknown, not compared",
                     "run nvidia-smi: its banner should show 'CUDA Version'")
    driver_cuda = report.cuda_version
    detail = f"{name}, CUDA {dotted(cuda)} build; driver {report.driver_version} supports CUDA {dotted(driver_cuda)}"
    if cuda <= driver_cuda:
        return Check("pytorch", Status.PASS, detail)
    floor = table.minor_version_driver_floor.get(cuda[0])
    if cuda[0] == driver_cuda[0] and floor and parse_version(report.driver_version or "0") >= parse_version(floor):
        return Check("pytorch", Status.WARN, f"{detail}: it runs only through CUDA minor-version compatibility", advice.pick.command)
    return Check("pytorch", Status.FAIL, f"{detail}: too old for this build ('The NVIDIA driver on your system is too old')",
                 advice.pick.command)


def explain_torchvision_error(message: str) -> str:
    """Turn the errors of a torchvision built for another torch into what they mean."""
    if "torchvision::nms does not exist" in message or "Couldn't load custom C++ ops" in message:
        return f"torchvision was built for a different torch than the one installed ('{message}')"
    if "different CUDA major versions" in message:
        return f"torchvision and torch were built for different CUDA versions ('{message}')"
    return f"import torchvision failed: {message}"


def torchvision_check(torch: ModuleType, table: CompatTable) -> Check:
    """torchvision importable, paired with this torch release, and built for the same CUDA."""
    release = table.release(torch.__version__)
    build = _torch_build(torch)
    fix = f"pip install torchvision=={release.torchvision} --index-url {table.url(build)}" if release else \
        "install the torchvision released with this torch (see https://github.com/pytorch/vision#installation)"
    try:
        import torchvision
    except ImportError as error:
        if importlib.util.find_spec("torchvision") is None:
            return Check("torchvision", Status.FAIL, "not installed", fix)
        return Check("torchvision", Status.FAIL, explain_torchvision_error(_first_line(error)), fix)
    except Exception as error:  # torchvision raises RuntimeError/OSError at import when its C++ ops do not match torch
        return Check("torchvision", Status.FAIL, explain_torchvision_error(_first_line(error)), fix)
    name = f"torchvision {torchvision.__version__}"
    if release is None:
        return Check("torchvision", Status.WARN,
                     f"{name}; torch {torch.__version__} is not in the table of {table.date}, pairing not checked",
                     "update bmclip for a newer table")
    if parse_version(torchvision.__version__)[:3] != parse_version(release.torchvision):
        return Check("torchvision", Status.FAIL,
                     f"{name} is not the release for torch {release.torch} (that is {release.torchvision})", fix)
    vision_cuda = getattr(getattr(torchvision, "version", None), "cuda", None)
    vision_cuda = ((int(str(vision_cuda)) // 1000, int(str(vision_cuda)) % 1000 // 10) if str(vision_cuda or "").isdigit()
                   else _cuda(vision_cuda))
    torch_cuda = _cuda(torch.version.cuda)
    if vision_cuda and torch_cuda and vision_cuda != torch_cuda:
        return Check("torchvision", Status.FAIL,
                     f"{name} is built for CUDA {dotted(vision_cuda)}, torch for CUDA {dotted(torch_cuda)}", fix)
    return Check("torchvision", Status.PASS, f"{name}, matches torch {torch.__version__}")


def _unusable_reason(torch: ModuleType) -> str:
    try:
        torch.cuda.init()
    except Exception as error:  # torch explains here why CUDA cannot start (driver too old, no device, ...)
        return _first_line(error)
    return "torch.cuda.is_available() is False"


def gpu_check(torch: ModuleType, report: DriverReport, advice: Advice) -> Check:
    """Every GPU has code in this build (torch.cuda.get_arch_list()) and runs a small matmul."""
    if not report.gpus:
        return Check("gpus", Status.PASS, "no NVIDIA GPU listed by nvidia-smi: nothing to run on")
    if torch.version.cuda is None:
        return Check("gpus", Status.FAIL, "a CPU-only torch cannot use the GPUs", advice.pick.command)
    archs = tuple(torch.cuda.get_arch_list())
    missing = [gpu for gpu in report.gpus if archs and gpu.compute_capability and not covers(archs, gpu.compute_capability)]
    if missing:
        gpu = missing[0]
        return Check("gpus", Status.FAIL, f"this torch has code for {' '.join(archs)}; GPU {gpu.index} ({gpu.name}) is {gpu.arch} "
                                          "('no kernel image is available for execution on the device')", advice.pick.command)
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and not [item for item in visible.split(",") if item.strip() and item.strip() != "-1"]:
            return Check("gpus", Status.WARN, f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from torch",
                         "unset CUDA_VISIBLE_DEVICES or list the GPUs to use")
        return Check("gpus", Status.FAIL, f"torch cannot use the GPUs: {_unusable_reason(torch)}", advice.pick.command)
    failed = []
    for index in range(torch.cuda.device_count()):
        try:
            matrix = torch.ones(64, 64, device=f"cuda:{index}")
            (matrix @ matrix).sum().item()
        except Exception as error:  # a missing kernel or a broken device shows up only when a kernel runs
            failed.append(f"cuda:{index} {_first_line(error)}")
    if failed:
        return Check("gpus", Status.FAIL, f"a matmul failed on {failed[0]}", advice.pick.command)
    return Check("gpus", Status.PASS, f"a matmul ran on each of {torch.cuda.device_count()} GPU(s) (code for {' '.join(archs)})")


def _training_requirements() -> list:
    """open_clip_torch's requirements with the [training] extra, as packaging Requirements; none when it is not installed."""
    try:
        declared = importlib.metadata.requires(OPEN_CLIP_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    from packaging.requirements import Requirement  # installed with open_clip_torch (huggingface_hub requires it)

    requirements = [Requirement(text) for text in declared]
    return [requirement for requirement in requirements
            if requirement.marker is None or requirement.marker.evaluate({"extra": TRAINING_EXTRA})]


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def open_clip_check() -> Check:
    """open_clip and open_clip_train are installed with their requirements (found, not imported: that takes seconds)."""
    fix = "pip install 'open_clip_torch[training]>=3.3,<3.4'"
    version = _installed_version(OPEN_CLIP_DISTRIBUTION)
    if version is None or importlib.util.find_spec("open_clip") is None or importlib.util.find_spec("open_clip_train") is None:
        return Check("open_clip", Status.FAIL, "open_clip_torch (open_clip and open_clip_train) is not installed", fix)
    missing = [requirement.name for requirement in _training_requirements() if _installed_version(requirement.name) is None]
    if missing:
        return Check("open_clip", Status.FAIL, f"open_clip_torch {version} needs {', '.join(missing)}, not installed", fix)
    try:
        import open_clip_train.params  # noqa: F401  (imports only argparse: proves the package loads)
    except Exception as error:  # a broken install shows up here
        return Check("open_clip", Status.FAIL, f"import open_clip_train.params failed: {_first_line(error)}", fix)
    return Check("open_clip", Status.PASS, f"open_clip_torch {version}: open_clip and open_clip_train found, requirements installed")


def webdataset_check() -> Check:
    """webdataset's version is one open_clip_torch[training] accepts (its shard reader depends on that API)."""
    requirement = next((requirement for requirement in _training_requirements() if requirement.name == "webdataset"), None)
    wanted = str(requirement.specifier) if requirement else ""
    fix = f"pip install 'webdataset{wanted}'"
    version = _installed_version("webdataset")
    if version is None:
        return Check("webdataset", Status.FAIL, "not installed (needed to train on shards)", fix)
    if requirement and not requirement.specifier.contains(version, prereleases=True):
        return Check("webdataset", Status.FAIL, f"webdataset {version} is outside {wanted}, what open_clip_torch[training] accepts", fix)
    return Check("webdataset", Status.PASS, f"webdataset {version}" + (f", within {wanted}" if wanted else ""))


def installed_checks(table: CompatTable, report: DriverReport, advice: Advice) -> list[Check]:
    """The post-install checks; imports torch (once) only when it is installed."""
    if not torch_installed():
        return [Check("pytorch", Status.WARN, "not installed (the base install): install the recommended build", advice.pick.command)]
    try:
        import torch
    except Exception as error:  # a half-installed torch fails here; say so instead of crashing
        return [Check("pytorch", Status.FAIL, f"import torch failed: {_first_line(error)}", f"{advice.pick.command} --force-reinstall")]
    return [torch_build_check(torch, table, report, advice), torchvision_check(torch, table), gpu_check(torch, report, advice),
            open_clip_check(), webdataset_check()]
