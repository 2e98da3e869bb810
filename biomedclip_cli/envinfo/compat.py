"""The PyTorch compatibility table (compat.json beside this module): releases, their CUDA builds, driver floors.

The facts live in the data file so that a new PyTorch release is one more JSON entry, not a code change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("compat.json")
CPU_BUILD = "cpu"

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """'515.65.01' -> (515, 65, 1); '2.10.0+cu128' -> (2, 10, 0). Stops at the first part that is not a number."""
    numbers: list[int] = []
    for part in text.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(numbers)


def dotted(version: Version) -> str:
    """(11, 7) -> '11.7'."""
    return ".".join(str(number) for number in version)


def build_cuda(build: str) -> Version:
    """The CUDA version of a wheel build: 'cu117' -> (11, 7), 'cu130' -> (13, 0)."""
    digits = build.removeprefix("cu")
    return (int(digits[:-1]), int(digits[-1]))


def arch_runs_on(arch: str, capability: Version) -> bool:
    """Whether code compiled for `arch` runs on a GPU of compute capability `capability`.

    An sm_Xy binary runs on X.z for z >= y (sm_86 covers 8.9); compute_Xy (PTX) is compiled on the fly
    for any capability from X.y up.
    """
    kind, _, number = arch.partition("_")
    if not number.isdigit():
        return False
    major, minor = int(number[:-1]), int(number[-1])
    if kind == "sm":
        return capability[0] == major and capability[1] >= minor
    return kind == "compute" and tuple(capability) >= (major, minor)


def covers(archs: tuple[str, ...], capability: Version) -> bool:
    """Whether a build with these architectures runs on a GPU of this compute capability."""
    return any(arch_runs_on(arch, capability) for arch in archs)


@dataclass(frozen=True)
class Release:
    """One PyTorch release: the torchvision (and torchaudio) made for it, its Python range and CUDA builds."""

    torch: str
    torchvision: str
    torchaudio: str | None
    python: tuple[Version, Version]
    builds: dict[str, tuple[str, ...]]
    uncertain: str | None = None

    @property
    def version(self) -> Version:
        """The torch version as numbers, for ordering releases."""
        return parse_version(self.torch)

    def python_range(self) -> str:
        """'3.8-3.11': the Python versions this release publishes wheels for."""
        return f"{dotted(self.python[0])}-{dotted(self.python[1])}"

    def supports_python(self, python: Version) -> bool:
        """Whether wheels of this release exist for Python `python` (major, minor)."""
        return self.python[0] <= tuple(python[:2]) <= self.python[1]


@dataclass(frozen=True)
class CompatTable:
    """The whole table: its date, where wheels are downloaded from, driver floors and releases (oldest first)."""

    date: str
    index_url: str
    minor_version_driver_floor: dict[int, str]
    toolkit_driver_floor: dict[Version, str]
    releases: tuple[Release, ...]

    def url(self, build: str) -> str:
        """The pip index URL of a build ('cu117', 'cpu')."""
        return self.index_url.format(build=build)

    def release(self, torch_version: str) -> Release | None:
        """The table's row for an installed torch version ('2.14.1+cu130' finds 2.14.1), if any."""
        wanted = parse_version(torch_version)
        return next((release for release in self.releases if release.version == wanted), None)

    def newest(self) -> Release:
        """The newest release in the table (the one recommended for CPU-only machines)."""
        return max(self.releases, key=lambda release: release.version)

    def driver_floor(self, cuda: Version) -> str | None:
        """The driver a CUDA toolkit version ships with (its own floor), if the table knows it."""
        return self.toolkit_driver_floor.get(tuple(cuda[:2]))

    def cuda_for_driver(self, driver: Version) -> Version | None:
        """The newest CUDA version whose toolkit driver floor `driver` meets (used when the banner is unreadable)."""
        met = [cuda for cuda, floor in self.toolkit_driver_floor.items() if driver >= parse_version(floor)]
        return max(met) if met else None


def _release(entry: dict, architectures: dict[str, list[str]]) -> Release:
    low, high = entry["python"]
    builds = {build: tuple(architectures[name]) for build, name in entry["builds"].items()}
    return Release(entry["torch"], entry["torchvision"], entry.get("torchaudio"), (parse_version(low), parse_version(high)),
                   builds, entry.get("uncertain"))


def read_table(path: Path = TABLE_FILE) -> CompatTable:
    """Read a compatibility table file (the packaged compat.json unless told otherwise)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    releases = sorted((_release(entry, data["architectures"]) for entry in data["releases"]), key=lambda release: release.version)
    return CompatTable(
        date=data["date"],
        index_url=data["index_url"],
        minor_version_driver_floor={int(major): floor for major, floor in data["minor_version_driver_floor"].items()},
        toolkit_driver_floor={parse_version(cuda): floor for cuda, floor in data["toolkit_driver_floor"].items()},
        releases=tuple(releases),
    )


@cache
def packaged_table() -> CompatTable:
    """The table shipped with bmclip, read once."""
    return read_table()
