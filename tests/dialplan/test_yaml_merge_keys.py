"""YAML merge keys (``<<: *anchor``) work in dialplans and settings, and a hot reload of them never dies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.app import App
from callbridge.cli import main as cli_main
from callbridge.dialplan.loader import check_dialplan
from callbridge.engine.effects import Publish
from callbridge.engine.events import DialplanRejected, DialplanReloaded
from callbridge.errors import CommandError, ConfigError
from callbridge.settings import Settings, load_settings

BASE = """\
hotlines:
  12345: {name: 市民热线, kind: service, dids: ["12345"], agent_queues: [q-12345]}
  110: {name: 报警, kind: emergency, dids: ["110"], agent_queues: [q-110]}
queues:
  q-12345: &queue
    strategy: leastrecent
    members: [PJSIP/agent1001]
    timeout: 15
  q-110:
    <<: *queue
    members: [Local/2101@sim]
"""

RULES = """\
x-transfer: &transfer
  from_hotline: "12345"
  mode: blind
  carry_number: true
  failure: [back_to_agent]
rules:
  r-110:
    <<: *transfer
    label: 警情转 110
    to_hotline: "110"
    code: "*1"
"""


def test_merge_keys_in_a_dialplan_work(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(BASE + RULES, encoding="utf-8")
    plan, problems = check_dialplan(path)
    assert plan is not None, "\n".join(map(str, problems))
    rule = plan.rules["r-110"]
    assert (rule.label, rule.from_hotline, rule.mode, rule.carry_number) == ("警情转 110", "12345", "blind", True)
    assert rule.failure == ("back_to_agent",)
    assert plan.queue("q-110").members == ("Local/2101@sim",)  # the key written beside << wins
    assert (plan.queue("q-110").strategy, plan.queue("q-110").timeout) == ("leastrecent", 15)
    assert cli_main(["check", "-q", str(path)]) == 0


def test_a_merged_key_missing_everywhere_is_reported_where_it_belongs(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(BASE + RULES.replace("    label: 警情转 110\n", "").replace('  from_hotline: "12345"\n', ""),
                    encoding="utf-8")  # fmt: skip
    plan, problems = check_dialplan(path)
    assert plan is None
    assert [(p.line, p.field) for p in problems if "from_hotline" in p.message] == [(17, "rules.r-110.from_hotline")]


def test_merge_keys_in_settings_work(tmp_path: Path) -> None:
    path = tmp_path / "callbridge.yaml"
    path.write_text(
        "x-local: &local\n  host: 127.0.0.2\nami:\n  <<: *local\n  port: 5039\nweb: {<<: *local, port: 8081}\n"
        "mqtt:\n  <<: [*local]\n  port: 1884\n",
        encoding="utf-8",
    )
    s = load_settings(path, env={})
    assert (s.ami.host, s.ami.port) == ("127.0.0.2", 5039)
    assert (s.web.host, s.web.port) == ("127.0.0.2", 8081)
    assert (s.mqtt.host, s.mqtt.port) == ("127.0.0.2", 1884)


def test_a_wrong_merged_setting_is_located_where_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "callbridge.yaml"
    path.write_text("x-local: &local\n  host: 127.0.0.1\n  port: many\nami:\n  <<: *local\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [p] = info.value.problems
    assert (p.file, p.line, p.column, p.field) == (str(path), 3, 9, "ami.port")


def test_merging_a_list_in_settings_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "callbridge.yaml"
    path.write_text("x-list: &l [1, 2]\nami:\n  port: 5038\n  <<: *l\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    [p] = info.value.problems
    assert (p.file, p.line, p.column) == (str(path), 4, 3)
    assert "'<<' merges mappings" in p.message


def test_hot_reload_takes_merge_keys_and_rejects_a_broken_one_keeping_the_running_plan(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(BASE, encoding="utf-8")
    app = App(Settings(), dialplan_path=tmp_path, enable_bus=False)
    running = app.plan

    path.write_text(BASE + RULES, encoding="utf-8")
    asyncio.run(app.reload("test"))
    assert app.plan is not running and app.plan.rules["r-110"].from_hotline == "12345"
    assert [type(e.event) for e in app.engine.drain() if isinstance(e, Publish)] == [DialplanReloaded]

    running = app.plan
    path.write_text(BASE + RULES.replace("  r-110:\n    <<: *transfer", "  r-110:\n    <<: *transfr"), encoding="utf-8")
    with pytest.raises(CommandError) as info:
        asyncio.run(app.reload("test"))
    assert info.value.code == "dialplan_invalid"
    assert app.plan is running
    [rejected] = [e.event for e in app.engine.drain() if isinstance(e, Publish)]
    assert isinstance(rejected, DialplanRejected)
    assert rejected.problems[0].startswith(f"{path}:19:9: error: ")
    assert "undefined alias" in rejected.problems[0]


def test_a_loader_fault_rejects_the_reload_instead_of_killing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What 'Task exception was never retrieved' was: a KeyError from the loader escaped the reload task."""
    (tmp_path / "city.yaml").write_text(BASE, encoding="utf-8")
    app = App(Settings(), dialplan_path=tmp_path, enable_bus=False)
    running = app.plan

    def broken_loader(path: Path) -> None:
        raise KeyError("label")

    monkeypatch.setattr("callbridge.app_reload.load_dialplan", broken_loader)  # the reload's loader
    with pytest.raises(CommandError) as info:
        asyncio.run(app.reload("sighup"))
    assert info.value.code == "dialplan_invalid" and "KeyError('label')" in str(info.value)
    assert app.plan is running
    [rejected] = [e.event for e in app.engine.drain() if isinstance(e, Publish)]
    assert isinstance(rejected, DialplanRejected) and rejected.reason == "sighup"
