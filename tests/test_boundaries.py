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
    # engine/service.py is the one effect interpreter: asyncio allowed, adapters still not.
    offenders = []
    for path in pure:
        banned = {"panoramisk", "aiomqtt", "paho", "sqlite3"}
        if path.name != "service.py":
            banned.add("asyncio")
        if path.relative_to(PKG).parts[0] == "dialplan" and path.name != "model.py":
            banned.discard("asyncio")  # the loader reads files; it still never touches the network
        hits = imported_modules(path) & banned
        if hits:
            offenders.append(f"{path.relative_to(PKG)}: {sorted(hits)}")
    assert offenders == []


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
