"""The package's floors depend one way: a module imports only from its own floor or the floors below it (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "biomedclip_cli"
# Top to bottom; a floor may import itself and anything below it, never above.
FLOORS = ("cli", "commands", "jobs", "checks", "launch", "rank", "runs", "models", "data", "hub", "envinfo", "leaves")
LEAVES = {"__init__", "config", "problems", "console", "partial_files", "pixel_policy", "sample_filter", "disk_space"}
RANKS_MAY_NOT_IMPORT = ("cli", "commands", "jobs", "checks", "launch")  # the parent's floors: a rank runs without them


def floor_of(module: str) -> str:
    """The floor of a dotted module under biomedclip_cli ('rank.worker' -> 'launch', 'config' -> 'leaves')."""
    top = module.split(".")[0]
    return "leaves" if top in LEAVES else "cli" if top in ("__main__", "entry") else top


def imports_of(path: Path) -> set[str]:
    """The biomedclip_cli modules a file imports, at its top or inside a function, as dotted names under the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("biomedclip_cli"):
            base = node.module.removeprefix("biomedclip_cli").lstrip(".")
            found |= {base or ("__init__" if alias.name.startswith("__") else alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("biomedclip_cli.") for alias in node.names if alias.name.startswith("biomedclip_cli.")}
    return found


def package_modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): path for path in PACKAGE.rglob("*.py")}


def test_every_module_sits_on_a_known_floor():
    assert {floor_of(module) for module in package_modules()} <= set(FLOORS)


def upward_imports(modules: dict[str, Path]) -> list[str]:
    """'A imports B' for each import of a module from a floor above its own."""
    return sorted(f"{module} imports {imported}" for module, path in modules.items() for imported in imports_of(path)
                  if FLOORS.index(floor_of(imported)) < FLOORS.index(floor_of(module)))


def test_no_module_imports_a_floor_above_its_own():
    upward = upward_imports(package_modules())
    assert not upward, "imports that run back up: " + "; ".join(upward)


def test_the_rank_package_imports_only_what_a_rank_needs():
    modules = {name: path for name, path in package_modules().items() if floor_of(name) == "rank"}
    assert "rank.worker" in modules
    imported = {name for path in modules.values() for name in imports_of(path)}
    assert not [name for name in imported if floor_of(name) in RANKS_MAY_NOT_IMPORT]


def test_an_import_inside_a_function_that_runs_back_up_is_caught(tmp_path: Path):
    module = tmp_path / "folder.py"
    module.write_text("def f():\n    from biomedclip_cli.launch.launcher import torchrun_command\n", encoding="utf-8")
    assert upward_imports({"runs.folder": module}) == ["runs.folder imports launch.launcher"]
