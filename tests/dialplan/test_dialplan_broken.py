"""Every file under broken/ (and warnings/) names the problem it must produce in its first line:

# expect: <severity> <line>[:<column>] <text the message must contain>

A folder under broken/ is one dialplan of several files; the file whose first line is ``# expect:`` is where
the problem is reported, and ``{dir}`` in the text stands for the folder (a message naming the other file).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callbridge.dialplan.loader import check_dialplan, load_dialplan, load_dialplan_with_warnings
from callbridge.errors import ConfigError, Problem

HERE = Path(__file__).parent
EXPECT = re.compile(r"^# expect: (error|warning) (\d+)(?::(\d+))? (.+)$")
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
WARNINGS = sorted((HERE / "warnings").glob("*.yaml"))
BROKEN_DIRS = sorted(p for p in (HERE / "broken").iterdir() if p.is_dir())


def _expectation(path: Path) -> tuple[str, int, int | None, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: first line must be '# expect: ...'"
    return m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None, m.group(4)


def _matches(p: Problem, path: Path, severity: str, line: int, column: int | None, text: str) -> bool:
    return (
        p.file == str(path)
        and p.severity == severity
        and p.line == line
        and (column is None or p.column == column)
        and text in p.message + " " + p.field
    )


def test_there_are_at_least_25_distinct_broken_dialplans() -> None:
    texts = {p.read_text(encoding="utf-8").split("\n", 1)[1] for p in BROKEN}
    messages = {_expectation(p)[3] for p in BROKEN}
    assert len(texts) == len(BROKEN) >= 25
    assert len(messages) == len(BROKEN)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_dialplan_reports_the_right_problem_at_the_right_place(path: Path) -> None:
    severity, line, column, text = _expectation(path)
    plan, problems = check_dialplan(path)
    assert plan is None
    assert any(_matches(p, path, severity, line, column, text) for p in problems), "\n".join(map(str, problems))
    with pytest.raises(ConfigError) as info:
        load_dialplan(path)
    assert all(p.severity == "error" for p in info.value.problems)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("folder", BROKEN_DIRS, ids=lambda p: p.name)
def test_broken_dialplan_of_several_files_names_both_places(folder: Path) -> None:
    [path] = [f for f in sorted(folder.glob("*.yaml")) if f.read_text(encoding="utf-8").startswith("# expect:")]
    severity, line, column, text = _expectation(path)
    text = text.replace("{dir}", str(folder))
    plan, problems = check_dialplan(folder)
    assert plan is None
    assert any(_matches(p, path, severity, line, column, text) for p in problems), "\n".join(map(str, problems))


@pytest.mark.parametrize("path", WARNINGS, ids=lambda p: p.stem)
def test_warnings_are_reported_but_do_not_fail(path: Path) -> None:
    severity, line, column, text = _expectation(path)
    plan, warnings = load_dialplan_with_warnings(path)
    assert plan.hotlines
    assert any(_matches(p, path, severity, line, column, text) for p in warnings), "\n".join(map(str, warnings))
    assert all(p.severity == "warning" for p in warnings)


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        'hotlines:\n  12345: {name: a, kind: service, dids: ["12345"], agent_queues: [q]}\nqueues: {q: {}}\n',
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text("# second file\nhotlines:\n  12345: {name: b, kind: service}\n", encoding="utf-8")
    plan, problems = check_dialplan(tmp_path)
    assert plan is None
    [p] = problems
    assert (p.file, p.line, p.column) == (str(tmp_path / "b.yaml"), 3, 3)
    assert f"already defined at {tmp_path / 'a.yaml'}:2:3" in p.message


def test_a_single_setting_in_two_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("start_mode: normal\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("\n\nstart_mode: surge\n", encoding="utf-8")
    _plan, problems = check_dialplan(tmp_path)
    assert [(p.file, p.line, p.field) for p in problems] == [(str(tmp_path / "b.yaml"), 3, "start_mode")]
    assert "already set at" in problems[0].message


def test_errors_in_several_files_are_all_located(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("hotlines:\n  12345: {name: a, kind: servce}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("queues:\n  q:\n    strategy: roundrobin\n", encoding="utf-8")
    _plan, problems = check_dialplan(tmp_path)
    located = {(Path(p.file).name, p.line) for p in problems}
    assert {("a.yaml", 2), ("b.yaml", 3)} <= located
