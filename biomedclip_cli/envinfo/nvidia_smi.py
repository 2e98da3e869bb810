"""What the NVIDIA driver says about this machine, read from `nvidia-smi` (no torch, no NVML bindings needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum

from biomedclip_cli.envinfo.compat import Version, parse_version

FIELDS = ("name", "driver_version", "compute_cap", "memory.total")
OLD_DRIVER_FIELDS = tuple(field for field in FIELDS if field != "compute_cap")
CUDA_IN_BANNER = re.compile(r"CUDA(?: UMD)? Version:\s*(\d+)\.(\d+)")
DRIVER_IN_BANNER = re.compile(r"(?:Driver|KMD) Version:\s*(\d+(?:\.\d+)*)")
TIMEOUT_S = 20.0


class SmiStatus(str, Enum):
    """How reading nvidia-smi went."""

    OK = "ok"
    MISSING = "missing"
    FAILED = "failed"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Gpu:
    """One GPU as nvidia-smi lists it; the compute capability is None on drivers too old to report it."""

    index: int
    name: str
    compute_capability: Version | None
    memory_mib: int | None

    @property
    def arch(self) -> str | None:
        """The architecture name builds are compiled for: compute capability 8.6 -> 'sm_86'."""
        if self.compute_capability is None:
            return None
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class DriverReport:
    """The driver version, the CUDA version it supports and the GPUs, or why they could not be read."""

    status: SmiStatus
    driver_version: str | None = None
    cuda_version: Version | None = None
    gpus: tuple[Gpu, ...] = ()
    message: str = ""

    def as_dict(self) -> dict:
        """The report as plain JSON-ready values."""
        return {
            "nvidia_smi": self.status.value,
            "message": self.message or None,
            "driver_version": self.driver_version,
            "cuda_version": ".".join(map(str, self.cuda_version)) if self.cuda_version else None,
            "gpus": [{"index": gpu.index, "name": gpu.name, "arch": gpu.arch,
                      "compute_capability": ".".join(map(str, gpu.compute_capability)) if gpu.compute_capability else None,
                      "memory_mib": gpu.memory_mib} for gpu in self.gpus],
        }


def parse_banner(text: str) -> tuple[str | None, Version | None]:
    """The driver version and CUDA version from nvidia-smi's banner.

    Reads both 'Driver Version: 515.65.01  CUDA Version: 11.7' and the R610+ form
    'KMD Version: 610.57.04  CUDA UMD Version: 13.3'.
    """
    driver = DRIVER_IN_BANNER.search(text)
    cuda = CUDA_IN_BANNER.search(text)
    return (driver.group(1) if driver else None,
            (int(cuda.group(1)), int(cuda.group(2))) if cuda else None)


def _memory_mib(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)\s*MiB", text.strip())
    return int(match.group(1)) if match else None


def parse_gpu_lines(text: str, fields: tuple[str, ...]) -> tuple[list[Gpu], str | None]:
    """GPUs and the driver version from `--query-gpu=<fields> --format=csv,noheader` output.

    Lines that do not fit the fields are skipped.
    """
    gpus: list[Gpu] = []
    driver = None
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < len(fields):
            continue
        name = ", ".join(parts[: len(parts) - len(fields) + 1])
        values = dict(zip(fields, [name, *parts[len(parts) - len(fields) + 1:]], strict=True))
        if not re.fullmatch(r"\d+(\.\d+)+", values["driver_version"]):
            continue
        capability = None
        if "compute_cap" in values:
            if not re.fullmatch(r"\d+\.\d", values["compute_cap"]):
                continue
            capability = parse_version(values["compute_cap"])
        gpus.append(Gpu(len(gpus), values["name"], capability, _memory_mib(values["memory.total"])))
        driver = driver or values["driver_version"]
    return gpus, driver


def _first_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()
    return "(no output)"


def _query_command(executable: str, fields: tuple[str, ...]) -> list[str]:
    return [executable, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]


def _run(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands side by side (nvidia-smi can take a second to start) and wait for all of them."""
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
               for command in commands]
    try:
        finished = []
        for process in running:
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
            finished.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
        return finished
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.communicate()


def probe() -> DriverReport:
    """Ask nvidia-smi (the first on PATH) for the driver, its CUDA version and every GPU.

    Old drivers (R470) reject the compute_cap field; the query is then repeated without it.
    """
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return DriverReport(SmiStatus.MISSING, message="nvidia-smi is not on PATH")
    try:
        banner, query = _run([[executable], _query_command(executable, FIELDS)])
        fields: tuple[str, ...] = FIELDS
        if query.returncode != 0 and "compute_cap" in query.stdout + query.stderr:
            fields = OLD_DRIVER_FIELDS
            (query,) = _run([_query_command(executable, fields)])
    except subprocess.TimeoutExpired:
        return DriverReport(SmiStatus.FAILED, message=f"nvidia-smi did not answer within {TIMEOUT_S:.0f} s")
    except OSError as exc:
        return DriverReport(SmiStatus.FAILED, message=f"nvidia-smi could not be run: {exc}")
    if banner.returncode != 0 or query.returncode != 0:
        failed = banner if banner.returncode != 0 else query
        return DriverReport(SmiStatus.FAILED, message=f"nvidia-smi exited with status {failed.returncode}: "
                                                      f"{_first_line(failed.stdout, failed.stderr)}")
    driver, cuda = parse_banner(banner.stdout)
    gpus, query_driver = parse_gpu_lines(query.stdout, fields)
    if not gpus:
        return DriverReport(SmiStatus.UNREADABLE, driver, cuda,
                            message=f"no GPU could be read from nvidia-smi's output: {_first_line(query.stdout, query.stderr)}")
    return DriverReport(SmiStatus.OK, query_driver or driver, cuda, tuple(gpus))
