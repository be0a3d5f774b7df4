"""YAML mistakes outside the broken/ fixtures: settings files, bytes that are not UTF-8, and what still parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.cli import main as cli_main
from callbridge.dialplan.loader import check_dialplan
from callbridge.errors import ConfigError, UnreadableConfigError
from callbridge.settings import load_settings


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('ami:\n  host: "127.0.0.1\n  port: 5038\nlog:\n  level: "info"\n', 2, 9, "unclosed quote"),
        ("ami:\n  host: 127.0.0.1\n\tport: 5038\n", 3, 1, "tabs cannot indent YAML; use spaces"),
        ("ami:\n    host: 127.0.0.1\n   port: 5038\n", 3, 4, "bad indentation: this line starts at column 4"),
        ("ami:\n  port: 5038\n  port: 5039\n", 3, 3, 'this mapping already has it (first at line 2)'),
    ],
)
def test_settings_yaml_mistakes_are_explained(tmp_path: Path, text: str, line: int, column: int, needle: str) -> None:
    path = tmp_path / "callbridge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [p] = info.value.problems
    assert (p.file, p.line, p.column) == (str(path), line, column)
    assert needle in p.message


def test_a_file_saved_as_gbk_is_named_with_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "110.yaml"
    path.write_bytes("hotlines:\n  110:\n    name: 报警\n".encode("gbk"))
    with pytest.raises(UnreadableConfigError, match=rf"^{path}:3:11: not UTF-8 text .* save the file as UTF-8"):
        check_dialplan(path)
    assert cli_main(["check", str(path)]) == 2
    assert f"{path}:3:11: not UTF-8" in capsys.readouterr().err


def test_a_quote_that_closes_lines_later_is_an_unclosed_quote_not_a_missing_key(tmp_path: Path) -> None:
    """YAML lets the string run on; here it would swallow `kind` and blame a key that is there."""
    path = tmp_path / "city.yaml"
    path.write_text(
        'hotlines:\n  12345:\n    name: "市民热线\n    kind: service"\n    agent_queues: [q]\nqueues: {q: {}}\n',
        encoding="utf-8",
    )
    plan, problems = check_dialplan(path)
    assert plan is None
    assert [(p.line, p.column) for p in problems] == [(3, 11)]
    assert problems[0].message.startswith("unclosed quote") and "runs on to line 4" in problems[0].message


def test_a_block_scalar_over_several_lines_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(
        "hotlines:\n  12345:\n    name: >\n      市民热线\n      citizen's line\n    kind: service\n"
        '    dids: ["12345"]\n    agent_queues: [q]\nqueues: {q: {members: [PJSIP/a]}}\n',
        encoding="utf-8",
    )
    plan, problems = check_dialplan(path)
    assert plan is not None, problems
    assert plan.hotline("12345").name == "市民热线 citizen's line"
