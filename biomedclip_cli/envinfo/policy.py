"""Which PyTorch to install on this machine: the recommendation policy of `bmclip env-check`.

1. Keep the table's builds whose architectures cover every GPU found.
2. Among them take the highest CUDA build not newer than the CUDA version the driver reports (an older
   major is fine), and the newest release published for that build.
3. If none qualifies, use CUDA minor-version compatibility: the highest build of the driver's CUDA major
   whose driver floor the driver meets, and say that it relies on it.
4. No GPU, or no usable nvidia-smi: the CPU build of the newest release.
A newer release that would also run through minor-version compatibility is offered as a second option.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from biomedclip_cli.envinfo.compat import CPU_BUILD, CompatTable, Release, Version, build_cuda, covers, dotted, parse_version
from biomedclip_cli.envinfo.nvidia_smi import DriverReport, SmiStatus

Candidate = tuple[Release, str]


@dataclass(frozen=True)
class Pick:
    """One install choice: a release, one of its builds (cuXXX or cpu), and why it was chosen."""

    release: Release
    build: str
    index_url: str
    reason: str
    minor_version_compatibility: bool = False

    @property
    def command(self) -> str:
        """The pip command that installs it (torchaudio is left out: bmclip and open_clip do not use it)."""
        return f"pip install torch=={self.release.torch} torchvision=={self.release.torchvision} --index-url {self.index_url}"

    def as_dict(self) -> dict:
        """The pick as plain JSON-ready values."""
        release = self.release
        return {"command": self.command, "torch": release.torch, "torchvision": release.torchvision, "torchaudio": release.torchaudio,
                "build": self.build, "index_url": self.index_url, "python": release.python_range(), "reason": self.reason,
                "minor_version_compatibility": self.minor_version_compatibility, "table_uncertain": release.uncertain}


@dataclass(frozen=True)
class Advice:
    """The recommended install, an optional newer second option, notes, and why no CUDA build fits (if so)."""

    pick: Pick
    alternative: Pick | None = None
    notes: tuple[str, ...] = ()
    problem: str | None = None
    fix: str = ""

    def as_dict(self) -> dict:
        """The advice as plain JSON-ready values."""
        return {"recommended": self.pick.as_dict(), "alternative": self.alternative.as_dict() if self.alternative else None,
                "notes": list(self.notes), "problem": self.problem, "fix": self.fix or None}


def _cpu_pick(table: CompatTable, reason: str) -> Pick:
    return Pick(table.newest(), CPU_BUILD, table.url(CPU_BUILD), reason)


def _newest_build_first(candidate: Candidate) -> tuple[Version, Version]:
    return build_cuda(candidate[1]), candidate[0].version


def _newest_release_first(candidate: Candidate) -> tuple[Version, Version]:
    return candidate[0].version, build_cuda(candidate[1])


def _best(candidates: Iterable[Candidate], order: Callable[[Candidate], tuple[Version, Version]]) -> Candidate | None:
    candidates = list(candidates)
    return max(candidates, key=order) if candidates else None


def _archs(report: DriverReport) -> str:
    archs = sorted({gpu.arch for gpu in report.gpus if gpu.arch}, key=lambda arch: int(arch[3:]))
    return ", ".join(archs) if archs else "these GPUs"


def _uncertain_note(pick: Pick) -> list[str]:
    if pick.release.uncertain is None:
        return []
    return [f"the table marks torch {pick.release.torch} as uncertain: {pick.release.uncertain}"]


def advise(table: CompatTable, report: DriverReport) -> Advice:
    """The PyTorch install that fits this driver and these GPUs, chosen by the policy in this module's docstring."""
    if report.status is SmiStatus.MISSING:
        return Advice(_cpu_pick(table, "no NVIDIA driver found (nvidia-smi is not on PATH): the CPU build"))
    if report.status is not SmiStatus.OK:
        return Advice(_cpu_pick(table, f"nvidia-smi could not be read ({report.message}): the CPU build"))
    notes: list[str] = []
    capabilities = [gpu.compute_capability for gpu in report.gpus if gpu.compute_capability is not None]
    unknown = [gpu for gpu in report.gpus if gpu.compute_capability is None]
    if unknown:
        notes.append(f"this driver does not report compute capabilities: check that {unknown[0].name} is one of the "
                     "recommended build's architectures (bmclip env-check lists them once torch is installed)")
    driver = parse_version(report.driver_version or "0")
    cuda = report.cuda_version
    if cuda is None:
        cuda = table.cuda_for_driver(driver)
        if cuda is not None:
            notes.append(f"nvidia-smi's banner shows no CUDA version; CUDA {dotted(cuda)} assumed from driver {report.driver_version}")
    candidates = [(release, build) for release in table.releases for build, archs in release.builds.items()
                  if all(covers(archs, capability) for capability in capabilities)]
    if not candidates:
        cpu = _cpu_pick(table, f"no CUDA build in the table has code for {_archs(report)}: the CPU build")
        return Advice(cpu, notes=tuple(notes), problem=f"no PyTorch build in the table of {table.date} has code for {_archs(report)}",
                      fix="update bmclip (its table may know a newer PyTorch) or build PyTorch from source")
    cuda = cuda or (0, 0)
    major_floor = table.minor_version_driver_floor.get(cuda[0])
    minor_compatible = [(release, build) for release, build in candidates if build_cuda(build)[0] == cuda[0] and build_cuda(build) > cuda
                        and major_floor is not None and driver >= parse_version(major_floor)]
    native = _best(((release, build) for release, build in candidates if build_cuda(build) <= cuda), _newest_build_first)
    if native is not None:
        release, build = native
        pick = Pick(release, build, table.url(build),
                    f"{build} is the highest CUDA build not newer than the driver's CUDA {dotted(cuda)} with code for {_archs(report)}; "
                    f"torch {release.torch} is the newest release built for it")
    else:
        fallback = _best(minor_compatible, _newest_build_first)
        if fallback is None:
            return _driver_too_old(table, report, candidates, notes)
        release, build = fallback
        old_enough = any(build_cuda(build) <= cuda for release in table.releases for build in release.builds)
        missing = f"no build for CUDA {dotted(cuda)} or older has code for {_archs(report)}" if old_enough else \
            f"the table has no build for CUDA {dotted(cuda)} or older"
        pick = Pick(release, build, table.url(build),
                    f"{missing}; {build} runs on driver {report.driver_version} only through CUDA minor-version compatibility "
                    f"({cuda[0]}.x needs driver {major_floor} or newer)", True)
    alternative = None
    newer = _best(((release, build) for release, build in minor_compatible if release.version > pick.release.version),
                  _newest_release_first)
    if newer is not None:
        release, build = newer
        alternative = Pick(release, build, table.url(build),
                           f"a newer release that relies on CUDA minor-version compatibility: {build} is newer than the driver's "
                           f"CUDA {dotted(cuda)}, and {cuda[0]}.x builds run on driver {major_floor} or newer", True)
    notes += _uncertain_note(pick) + (_uncertain_note(alternative) if alternative else [])
    return Advice(pick, alternative, tuple(notes))


def _driver_too_old(table: CompatTable, report: DriverReport, candidates: list[Candidate], notes: list[str]) -> Advice:
    """The advice when GPUs are found but every build that has code for them needs a newer driver."""
    floors = [floor for _, build in candidates
              for floor in (table.driver_floor(build_cuda(build)), table.minor_version_driver_floor.get(build_cuda(build)[0])) if floor]
    needed = f"{min(floors, key=parse_version)} or newer" if floors else "a newer version"
    cpu = _cpu_pick(table, f"driver {report.driver_version} is too old for every CUDA build with code for {_archs(report)}: the CPU build")
    return Advice(cpu, notes=tuple(notes),
                  problem=f"driver {report.driver_version} is older than every PyTorch CUDA build with code for {_archs(report)}",
                  fix=f"update the NVIDIA driver to {needed}, then run bmclip env-check again")
