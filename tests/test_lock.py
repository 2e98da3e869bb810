"""constraints.txt, which `make venv` installs with, pins every dependency pyproject names, within pyproject's ranges."""

from __future__ import annotations

import tomllib
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CHOSEN_BY_TORCH = {"torch", "torchvision"}


def pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("==") for line in lines if line.strip() and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pairs}


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = [*project["dependencies"], *(text for extra in project["optional-dependencies"].values() for text in extra)]
    return [Requirement(text) for text in texts]


def test_every_dependency_is_pinned_within_pyprojects_range():
    locked = pins()
    for requirement in pyproject_requirements():
        name = canonicalize_name(requirement.name)
        if name in CHOSEN_BY_TORCH:
            continue
        assert name in locked, f"{requirement.name} is in pyproject.toml but not in constraints.txt: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), \
            f"constraints.txt pins {name}=={locked[name]}, outside pyproject's {requirement.specifier}: run make lock"


def test_pytorch_is_left_to_the_makefiles_torch_choice():
    locked = pins()
    assert not CHOSEN_BY_TORCH & set(locked)
    assert not [name for name in locked if name.startswith(("nvidia-", "triton"))]
