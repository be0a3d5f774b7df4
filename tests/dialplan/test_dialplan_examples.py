"""The example city dialplans load cleanly and the Dialplan lookups answer what the engine asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from callbridge.cli import main as cli_main
from callbridge.cli.schema import schema_text
from callbridge.dialplan import Dialplan, load_dialplan, load_dialplan_with_warnings
from callbridge.dialplan.loader import check_dialplan

REPO = Path(__file__).resolve().parents[2]
DIALPLANS = REPO / "dialplans"
SCHEMA_LINE = "# yaml-language-server: $schema=../docs/dialplan.schema.json"


@pytest.fixture(scope="module")
def city() -> Dialplan:
    return load_dialplan(DIALPLANS)


def test_examples_load_without_errors_or_warnings() -> None:
    _plan, warnings = load_dialplan_with_warnings(DIALPLANS)
    assert warnings == ()


def test_every_example_file_also_loads_in_the_merged_set_and_names_the_schema() -> None:
    files = sorted(DIALPLANS.glob("*.yaml"))
    assert len(files) >= 6
    for f in files:
        assert f.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE, f.name


def test_the_city_has_every_hotline_of_the_issue(city: Dialplan) -> None:
    kinds = {n: h.kind for n, h in city.hotlines.items()}
    assert kinds["12345"] == "service"
    assert all(kinds[n] == "emergency" for n in ("110", "119", "120", "122"))
    assert sum(1 for k in kinds.values() if k == "utility") == 4


def test_lookups(city: Dialplan) -> None:
    assert city.hotline("110").name == "110 报警服务台"
    assert city.lines_for("110") == ("PJSIP/110@hotline-110", "PJSIP/110@hotline-110-backup")
    assert city.lines_for("12345") == ()  # served locally
    assert city.hotline_of_did("120") == city.hotline("120")
    assert city.hotline_of_did("999") is None
    assert city.hotline_of_queue("q-119-expert") == city.hotline("119")
    assert city.hotline_of_agent("PJSIP/agent1002") == city.hotline("12345")
    assert city.hotline_of_trunk("t-carrier") is not None
    assert city.agent_queue("12345") == "q-12345"
    assert city.expert_queue("110") == "q-110-expert"
    assert city.trunk("t-110").number_carrying.verify is True
    assert city.queue("q-12345").members == ("PJSIP/agent1001", "PJSIP/agent1002", "PJSIP/agent1003")
    with pytest.raises(KeyError):
        city.hotline("999")


def test_one_key_codes_per_hotline_and_mode(city: Dialplan) -> None:
    police = city.rule_for_code("12345", "*1")
    assert police is not None
    assert (police.to_hotline, police.mode, police.carry_number) == ("110", "blind", True)
    assert police.failure == ("backup_line", "back_to_agent")
    # the same code pressed by 110's agents means something else
    back = city.rule_for_code("110", "*1")
    assert back is not None and back.to_hotline == "12345"
    # the emergency-plan rule exists only in its mode
    assert city.rule_for_code("12345", "#4") is None
    assert city.rule_for_code("12345", "#4", "emergency") is not None
    assert "*3" in city.codes_for("12345")
    threeway = city.rule_for_code("12345", "*3")
    assert threeway is not None and threeway.mode == "threeway" and threeway.agent_leaves


def test_modes_extend_each_other(city: Dialplan) -> None:
    assert city.start_mode == "normal"
    normal = {r.id for r in city.rules_in("normal")}
    emergency = {r.id for r in city.rules_in("emergency")}
    assert normal < emergency
    assert city.overflows_in("normal") == ()
    assert [o.id for o in city.overflows_in("surge")] == ["of-12345-remote"]
    assert {o.id for o in city.overflows_in("emergency")} == {"of-12345-remote", "of-110-region"}
    assert {r.id for r in city.rules_from("12345")} <= normal


def test_expert_priorities_by_origin_and_category(city: Dialplan) -> None:
    assert city.expert_priority("119", "12345", "emergency") == 10
    assert city.expert_priority("119", "120", "fire") == 5
    assert city.expert_priority("119", "120", "medical") == 0
    assert city.expert_priority("120", "119", None) == 8
    assert city.expert_priority("12345", "110", "emergency") == 0  # no expert seats


def test_dialplan_is_read_only(city: Dialplan) -> None:
    with pytest.raises(AttributeError):
        city.model = city.model  # type: ignore[misc]
    with pytest.raises(TypeError):
        city.hotlines["999"] = city.hotline("110")  # type: ignore[index]
    with pytest.raises(ValueError, match="frozen"):
        city.hotline("110").name = "x"  # type: ignore[misc]


def test_check_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check", str(DIALPLANS)]) == 0
    assert "OK" in capsys.readouterr().out
    broken = Path(__file__).parent / "broken" / "11_code_is_feature_code.yaml"
    assert cli_main(["check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:14:11: error: rules.r1.code:" in out
    assert cli_main(["check", str(tmp_path / "missing")]) == 2
    assert cli_main(["check", str(tmp_path)]) == 2  # a directory without YAML files
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe hotlines")
    assert cli_main(["check", str(tmp_path / "bad.yaml")]) == 2


def test_warnings_do_not_fail_check(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parent / "warnings" / "unreachable_hotline.yaml"
    assert cli_main(["check", str(path)]) == 0
    assert "warning" in capsys.readouterr().out


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "callbridge dialplan"
    assert {"hotlines", "trunks", "queues", "rules", "overflow", "nuisance", "modes"} <= set(schema["properties"])


def test_schema_file_is_up_to_date() -> None:
    committed = (REPO / "docs" / "dialplan.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "run: callbridge schema -o docs/dialplan.schema.json"


def test_examples_validate_against_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text())
    yaml = YAML(typ="safe")
    for f in sorted(DIALPLANS.glob("*.yaml")):
        data = yaml.load(f.read_text(encoding="utf-8"))
        data = json.loads(json.dumps(data, default=str))  # YAML int keys → JSON strings, as editors see them
        jsonschema.validate(data, schema)
    # and the schema does refuse a typo the editor should flag
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"hotlines": {"110": {"name": "x", "kind": "emergancy"}}}, schema)


def test_check_reports_all_problems_of_a_file_sorted(tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text("queues:\n  q: {strategy: nope}\nhotlines:\n  110: {name: x, kind: nope}\n", encoding="utf-8")
    _plan, problems = check_dialplan(f)
    assert [(p.line, p.field) for p in problems] == [(2, "queues.q.strategy"), (4, "hotlines.110.kind")]


def test_nuisance_policy_is_off_in_the_emergency_plan(city: Dialplan) -> None:
    policy = city.nuisance_in()
    assert policy is not None and (policy.window, policy.threshold) == (600, 5)
    assert "notify_110" in policy.actions and "13800138000" in policy.exempt
    assert city.nuisance_in("emergency") is None
    assert city.engine.dtmf_interdigit_timeout == 2.0


def test_check_json_format_and_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = Path(__file__).parent / "broken" / "06_bad_kind.yaml"
    assert cli_main(["check", "--format", "json", str(broken)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    problem = json.loads(line)
    assert (problem["line"], problem["column"], problem["field"]) == (6, 11, "hotlines.110.kind")
    settings = tmp_path / "callbridge.yaml"
    settings.write_text("ami:\n  port: many\n", encoding="utf-8")
    assert cli_main(["check", str(DIALPLANS), "--settings", str(settings)]) == 1
    assert f"{settings}:2:9: error: ami.port" in capsys.readouterr().out
    assert cli_main(["check", str(DIALPLANS), "--settings", str(REPO / "config" / "callbridge.yaml")]) == 0
    assert cli_main(["check", str(DIALPLANS), "--settings", str(tmp_path / "none.yaml")]) == 2
