"""The house rules of the architecture, checked on the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "callbridge"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("panoramisk", "ami"), ("aiomqtt", "bus"), ("paho", "bus")],
)
def test_only_one_adapter_imports_each_io_library(library: str, allowed: str) -> None:
    offenders = [
        str(p.relative_to(PKG)) for p in modules()
        if library in imported_modules(p) and p.relative_to(PKG).parts[0] != allowed
    ]
    assert offenders == [], f"{library} may only be imported under callbridge/{allowed}/"


def test_core_is_sans_io() -> None:
    pure = [p for p in modules() if p.relative_to(PKG).parts[0] in ("calls", "engine", "dialplan")]
    # no exemption for the engine: its asyncio interpreter lives on the runtime side (callbridge/runtime/)
    offenders = []
    for path in pure:
        banned = {"asyncio", "panoramisk", "aiomqtt", "paho", "sqlite3"}
        if path.relative_to(PKG).parts[0] == "dialplan" and path.name != "model.py":
            banned.discard("asyncio")  # the loader reads files; it still never touches the network
        hits = imported_modules(path) & banned
        if hits:
            offenders.append(f"{path.relative_to(PKG)}: {sorted(hits)}")
    assert offenders == []


def test_the_engine_imports_no_adapter_and_nothing_of_the_runtime() -> None:
    """engine/ reads the bus's commands through its own protocols; the runtime pairs them (one way)."""
    offenders = []
    for path in (PKG / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                ("callbridge.bus", "callbridge.runtime", "callbridge.store", "callbridge.web", "callbridge.app")
            ):
                offenders.append(f"{path.name}: {node.module}")
    assert offenders == []


def private_module_attributes(source: str) -> list[str]:
    """``module._private`` uses where ``module`` is an imported name (a dependency's internals)."""
    tree = ast.parse(source)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(alias.asname or alias.name for alias in node.names)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                hits.append(f"{node.lineno}: {ast.unparse(node)}")
    return hits


@pytest.mark.parametrize("area", ["engine", "runtime"])
def test_no_private_internals_of_dependencies(area: str) -> None:
    hits = {str(p.relative_to(PKG)): private_module_attributes(p.read_text(encoding="utf-8"))
            for p in sorted((PKG / area).rglob("*.py"))}  # fmt: skip
    assert {name: found for name, found in hits.items() if found} == {}


def test_the_private_internals_check_sees_them() -> None:
    # what the batch start used before it was a plain task, and the two spellings of it
    source = "import asyncio\nfrom asyncio import tasks\nasyncio.tasks._enter_task(1, 2)\ntasks._leave_task(1)\n"
    assert private_module_attributes(source) == ["3: asyncio.tasks._enter_task", "4: tasks._leave_task"]
    assert private_module_attributes("import asyncio\nasyncio.run(x)\nself._own = 1\n") == []


def test_simulator_never_imports_the_engine() -> None:
    offenders = []
    for path in (PKG / "sim").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                ("callbridge.engine", "callbridge.calls", "callbridge.app")
            ):
                offenders.append(f"{path.name}: {node.module}")
    assert offenders == []
