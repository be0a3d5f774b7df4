"""Property: whatever an ops person's editor does to a dialplan, ``check`` and hot reload answer in file:line:column.

The example dialplans are mutated the way real edits go wrong (a character deleted or typed, lines swapped, a
tab, an invisible character pasted, anchors, aliases and merge keys), then ``callbridge check`` and
``App.reload`` — what SIGHUP, the file watcher and the ``reload`` command call — must never raise: either
the dialplan is OK, or every problem carries its file, line and column and the running dialplan stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbridge.app import App
from callbridge.cli import main as cli_main
from callbridge.engine.effects import Publish
from callbridge.engine.events import DialplanRejected
from callbridge.errors import CommandError, ConfigError, Problem
from callbridge.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "dialplans").glob("*.yaml"))
SETTINGS = REPO / "config" / "callbridge.yaml"

#: what slips into a YAML file: syntax characters, whitespace, control and invisible characters, a BOM
TYPED = [
    '"', "'", ":", ": ", "-", "- ", " ", "  ", "\t", "\n", "#", "&a ", "*a", "<<: *a", "{", "}", "[", "]",
    "|", ">", "!", "%", "@", "`", ",", "?", "\\", "\r", "\ufeff", "\x00", "\x01", "\x08", "\x1b", "\x7f",
    "\x85", "\u2028", "\u200b", "\u00a0", "中", "报警", "\U0001f600",
]  # fmt: skip

Op = tuple[str, int, int, str]


def ops() -> st.SearchStrategy[list[Op]]:
    anywhere = st.integers(0, 1 << 16)
    typed = st.sampled_from(TYPED) | st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=3)
    op = st.one_of(
        st.tuples(st.just("delete"), anywhere, st.integers(1, 4), st.just("")),
        st.tuples(st.just("insert"), anywhere, st.just(0), typed),
        st.tuples(st.just("swap"), anywhere, anywhere, st.just("")),
        st.tuples(st.just("tab"), anywhere, st.just(0), st.just("")),
        st.tuples(st.just("indent"), anywhere, st.integers(-3, 3), st.just("")),
        st.tuples(st.just("duplicate"), anywhere, st.just(0), st.just("")),
        st.tuples(st.just("anchor"), anywhere, anywhere, st.sampled_from(["*a", "<<: *a", "<<: [*a]", "&a"])),
    )
    return st.lists(op, min_size=1, max_size=3)


def mutate(text: str, changes: list[Op]) -> str:
    for kind, a, b, s in changes:
        lines = text.split("\n")
        i, j = a % len(lines), b % len(lines)
        if kind == "delete":
            at = a % max(len(text), 1)
            text = text[:at] + text[at + b :]
        elif kind == "insert":
            at = a % (len(text) + 1)
            text = text[:at] + s + text[at:]
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "tab":
            stripped = lines[i].lstrip(" ")
            lines[i] = "\t" * max(1, (len(lines[i]) - len(stripped)) // 2) + stripped
            text = "\n".join(lines)
        elif kind == "indent":
            lines[i] = " " * max(0, b) + lines[i][max(0, -b) :]
            text = "\n".join(lines)
        elif kind == "duplicate":
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        else:  # an anchor on one key, something referring to it on another line
            lines[i] = re.sub(r":( |$)", r": &a\1", lines[i], count=1)
            indent = lines[j][: len(lines[j]) - len(lines[j].lstrip(" "))]
            if s.startswith("<<"):
                lines.insert(j, indent + s)
            else:
                lines[j] = re.sub(r": .*$", ": " + s, lines[j], count=1)
            text = "\n".join(lines)
    return text


@dataclass
class Rig:
    folder: Path
    app: App


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("dialplans")
    for f in EXAMPLES:
        shutil.copy(f, folder / f.name)
    yield Rig(folder, App(Settings(), dialplan_path=folder, enable_bus=False))


LOCATED = re.compile(r"^(?P<file>.+?\.yaml):(?P<line>[1-9]\d*):(?P<column>[1-9]\d*): (error|warning): ")


def assert_located(text: str, folder: Path) -> None:
    m = LOCATED.match(text)
    assert m, f"not file:line:column: {text!r}"
    assert Path(m["file"]).parent == folder, text


@pytest.mark.slow
@pytest.mark.timeout(600)
@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(which=st.sampled_from(EXAMPLES), changes=ops())
def test_check_and_hot_reload_answer_in_file_line_column(rig: Rig, which: Path, changes: list[Op]) -> None:
    original = which.read_text(encoding="utf-8")
    target = rig.folder / which.name
    target.write_text(mutate(original, changes), encoding="utf-8")
    try:
        # callbridge check (as ops run it, JSON lines): exit 0 = OK, 1 = problems, never a traceback
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli_main(["check", "-q", "--format", "json", str(rig.folder)])
        assert code in (0, 1)
        problems = [Problem(**json.loads(line)) for line in out.getvalue().split("\n") if line]
        errors = [p for p in problems if p.severity == "error"]
        assert (code == 1) == bool(errors)
        for p in problems:
            assert_located(str(p), rig.folder)

        # hot reload: the same verdict; a bad dialplan is rejected with located problems, the running one stays
        running = rig.app.plan
        rig.app.engine.drain()
        try:
            asyncio.run(rig.app.reload("test"))
        except CommandError as exc:
            assert exc.code == "dialplan_invalid"
            assert code == 1, "check said OK but the reload refused it"
            assert rig.app.plan is running
            [rejected] = [e.event for e in rig.app.engine.drain() if isinstance(e, Publish)]
            assert isinstance(rejected, DialplanRejected) and rejected.problems
            for text in rejected.problems:
                assert_located(text, rig.folder)
        else:
            assert code == 0, "check refused it but the reload took it"
            assert rig.app.plan is not running
    finally:
        target.write_text(original, encoding="utf-8")


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(changes=ops())
def test_settings_answer_in_file_line_column(tmp_path_factory: pytest.TempPathFactory, changes: list[Op]) -> None:
    path = tmp_path_factory.mktemp("settings") / "callbridge.yaml"
    path.write_text(mutate(SETTINGS.read_text(encoding="utf-8"), changes), encoding="utf-8")
    try:
        load_settings(path, env={})
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == str(path) and p.line >= 1 and p.column >= 1, p
