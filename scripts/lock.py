"""Write constraints.txt from the running environment: the exact versions `make test` passed with, for `make venv` to install.

Run by `make lock` in a fresh environment installed without constraints (the newest releases that
pyproject's ranges allow). PyTorch's own build is left out, with everything it pulls in (CUDA
wheels, triton, sympy, ...): `make venv TORCH=...` chooses it, and a pin here would fight that choice.
Why a freeze of a tested environment and not pip-compile or uv: both resolve anew, giving versions
that would be installed, not versions a suite ran with; and uv does not read the pip configuration
that points this project's machines at their local PyTorch wheels.
Usage: python scripts/lock.py [constraints.txt]
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CHOSEN_BY_TORCH = ("torch", "torchvision")
BMCLIP_EXTRAS = ("", "train", "report", "dev", "dicom-compressed")
BUILD_SPECIFIC = ("nvidia-", "cuda-", "triton")  # CUDA wheels of one PyTorch build, some pulled in only on some platforms
HEADER = """\
# The versions `make test` passed with (Python {python}), installed by `make venv` as pip constraints.
# PyTorch and what it pulls in are not here: TORCH= in the Makefile chooses them. Refresh with `make lock`.
"""


def requirement_closure(roots: tuple[str, ...], extras: tuple[str, ...] = ("",), stop: tuple[str, ...] = ()) -> set[str]:
    """The installed distributions `roots` need, directly or not, roots included; `extras` of the roots count, `stop` is not entered."""
    seen: set[str] = set()
    pending = [(canonicalize_name(root), extras) for root in roots]
    while pending:
        name, wanted = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in stop:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra}) for extra in wanted):
                pending.append((canonicalize_name(requirement.name), ("", *requirement.extras)))
    return seen


def locked_lines() -> list[str]:
    """`name==version` for what bmclip needs, with all its extras, but PyTorch's build (and what only it needs), sorted."""
    needed = requirement_closure(("bmclip",), BMCLIP_EXTRAS, stop=CHOSEN_BY_TORCH) - set(CHOSEN_BY_TORCH) - {"bmclip"}
    versions: dict[str, str] = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}
    return [f"{name}=={versions[name]}" for name in sorted(needed) if name in versions and not name.startswith(BUILD_SPECIFIC)]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt")
    python = ".".join(str(part) for part in sys.version_info[:2])
    out.write_text(HEADER.format(python=python) + "\n".join(locked_lines()) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(locked_lines())} pinned distributions")


if __name__ == "__main__":
    main()
