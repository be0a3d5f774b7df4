"""calls/ stays a house a newcomer can read (issue 18.1): its modules import one another one way, at the top,
touch no other module's private attributes, and see the AMI events only as types.

Read from the source with ``ast`` (what the modules say, not what they happen to do at run time), except the
last test, which imports calls/ in a fresh interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import callbridge.calls

CALLS = Path(callbridge.calls.__file__).parent
PACKAGE = "callbridge.calls"
MODULES = {p.stem: p for p in sorted(CALLS.glob("*.py"))}
#: What the tracker's state may be built on: the model and the domain-event catalogue, nothing that handles.
STATE_MAY_IMPORT = {"builders", "events", "model", "numbers"}


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute module names an import statement loads (``from pkg import sub`` names ``pkg.sub`` too)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _calls_imports(name: str) -> set[str]:
    """The calls/ modules ``name`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module in _imported(node):
                head, _, rest = module.rpartition(".")
                if head == PACKAGE and rest in MODULES and rest != name:
                    found.add(rest)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as the path that closes it), or ``None``."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_calls_modules_import_each_other_one_way() -> None:
    graph = {name: _calls_imports(name) for name in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, f"import cycle in calls/: {' -> '.join(cycle or [])}"
    assert graph["tracker"] >= {"handlers", "resync"}, "the façade is built on the handlers"


def test_the_state_is_below_every_handler_and_only_the_package_imports_the_tracker() -> None:
    assert _calls_imports("state") <= STATE_MAY_IMPORT
    importers = {name for name in MODULES if "tracker" in _calls_imports(name)}
    assert importers <= {"__init__"}, f"{sorted(importers)} import the façade; they should take the state"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_are_at_the_top_of_the_module(name: str) -> None:
    """No function-level import, and no import after the module's code began (a late import under E402)."""
    tree = _tree(name)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
            assert not inner, f"{name}.py:{inner[0].lineno if inner else 0}: import inside {node.name}"
    code_began = 0
    for stmt in tree.body:
        is_docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        is_type_checking = isinstance(stmt, ast.If) and ast.unparse(stmt.test).endswith("TYPE_CHECKING")
        if isinstance(stmt, ast.Import | ast.ImportFrom) or is_type_checking:
            assert not code_began, f"{name}.py:{stmt.lineno}: import after code (line {code_began})"
        elif not is_docstring:
            code_began = code_began or stmt.lineno


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_touches_another_ones_private_attributes(name: str) -> None:
    """``x._field`` only on ``self``/``cls``; no private name imported, no private module of a dependency."""
    offences = []
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                offences.append(f"{name}.py:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            offences += [f"{name}.py:{node.lineno}: {a.name}" for a in node.names if _private(a.name)]
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module in _imported(node)[:1] if isinstance(node, ast.ImportFrom) else _imported(node):
                if any(_private(part) for part in module.split(".")):
                    offences.append(f"{name}.py:{node.lineno}: import {module}")
    assert not offences


def test_the_private_attribute_check_sees_what_it_must() -> None:
    probe = ast.parse("import structlog._config\nx = t._channels\ny = self._ok\nfrom m import _hidden\n")
    seen = [n for n in ast.walk(probe) if isinstance(n, ast.Attribute) and _private(n.attr)]
    assert [ast.unparse(n) for n in seen] == ["t._channels", "self._ok"]
    assert _private("_config") and _private("_hidden") and not _private("__init__") and not _private("name")


def test_importing_calls_loads_the_ami_event_types_only() -> None:
    """calls/ sees AMI events as types: importing it loads no decoder, framing or C fast path of ami/."""
    probe = (
        "import pkgutil, sys, importlib, callbridge.calls as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('callbridge.calls.' + m.name)\n"
        "print('\\n'.join(sorted(n for n in sys.modules if n.startswith('callbridge.ami'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert "callbridge.ami.event_types" in loaded
    others = [m for m in loaded if m != "callbridge.ami" and not m.startswith("callbridge.ami.event_types")]
    assert others == [], f"calls/ loads more of ami/ than its event types: {others}"
