"""`callbridge render-asterisk`: the Asterisk side rendered from the example city dialplan."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.cli import main as cli_main
from callbridge.dialplan import Dialplan, load_dialplan, parse_dialplan_text
from callbridge.dialplan.render_conf import AMI_READ, AMI_WRITE, endpoint_of, render_all

REPO = Path(__file__).resolve().parents[2]
#: the applications docs/ARCHITECTURE.md allows (the simulator interprets exactly these)
ALLOWED_APPS = {
    "Answer", "Wait", "NoOp", "Set", "Dial", "Queue", "ConfBridge", "MusicOnHold", "Playback", "UserEvent",
    "Goto", "GotoIf", "Hangup",
}  # fmt: skip


@pytest.fixture(scope="module")
def city() -> Dialplan:
    return load_dialplan(REPO / "dialplans")


@pytest.fixture(scope="module")
def files(city: Dialplan) -> dict[str, str]:
    return render_all(city)


def _context(text: str, name: str) -> str:
    start = text.index(f"[{name}]\n")
    end = text.find("\n[", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_extensions_has_every_context_of_the_contract(files: dict[str, str]) -> None:
    ext = files["extensions.conf"]
    for ctx in ("cb-inbound", "cb-to-110", "cb-to-120", "cb-to-12345", "cb-expert-119", "cb-conf", "cb-back",
                "cb-overflow", "cb-announce", "cb-hold"):  # fmt: skip
        assert f"[{ctx}]\n" in ext, ctx


def test_extensions_uses_only_the_documented_applications(files: dict[str, str]) -> None:
    import re

    apps = set(
        re.findall(
            r"^(?:exten => [^,]+,1|\s*same => n(?:\([a-z0-9]+\))?),([A-Za-z]+)\(", files["extensions.conf"], re.M
        )
    )
    assert apps and apps <= ALLOWED_APPS, apps - ALLOWED_APPS


def test_transfer_context_tries_lines_in_order_then_goes_back(files: dict[str, str]) -> None:
    ctx = _context(files["extensions.conf"], "cb-to-110")
    primary = ctx.index("Dial(PJSIP/110@hotline-110,${CB_TIMEOUT})")
    backup = ctx.index("Dial(PJSIP/110@hotline-110-backup,${CB_TIMEOUT})")
    back = ctx.index("Goto(cb-back,s,1)")
    assert primary < backup < back
    assert "Set(CALLERID(num)=${CB_CALLER_NUM})" in ctx
    assert "UserEvent(CallbridgeLine,XferId: ${CB_XFER_ID},Line: 1,Status: ${DIALSTATUS})" in ctx
    assert "UserEvent(CallbridgeLine,XferId: ${CB_XFER_ID},Line: 2,Status: ${DIALSTATUS})" in ctx


def test_local_hotline_is_queued_and_expert_queue_takes_priority(files: dict[str, str]) -> None:
    ext = files["extensions.conf"]
    assert "Queue(q-12345,t,,,${CB_TIMEOUT})" in _context(ext, "cb-to-12345")
    expert = _context(ext, "cb-expert-110")
    assert expert.index("Set(QUEUE_PRIO=${CB_PRIO})") < expert.index("Queue(q-110-expert,")


def test_emergency_callers_are_never_hung_up(files: dict[str, str]) -> None:
    inbound = _context(files["extensions.conf"], "cb-inbound")
    block = inbound[inbound.index("exten => 110,1") : inbound.index("exten => 119,1")]
    assert "Hangup" not in block
    assert "Goto(cb-inbound,110,queue)" in block
    assert '$["${QUEUESTATUS}" = "WITHDRAW"]?cb-overflow,${QUEUE_WITHDRAW_INFO},1' in block
    assert 'GotoIf($["${CB_OVERFLOW_110}" = ""]?queue:overflow)' in block
    back = _context(files["extensions.conf"], "cb-back")
    assert "Dial(${CB_BACK},30)" in back
    assert back.count("Hangup()") == 1  # only after the sending agent answered


def test_overflow_and_conference_and_announcement(files: dict[str, str]) -> None:
    ext = files["extensions.conf"]
    assert "exten => of-12345-remote,1," in _context(ext, "cb-overflow")
    assert "Queue(q-12345-remote,t,,,600)" in ext
    assert "Dial(PJSIP/110@hotline-110-region,30)" in ext
    assert "ConfBridge(${EXTEN},cb_bridge,cb_user)" in _context(ext, "cb-conf")
    assert "Playback(callbridge-nuisance)" in _context(ext, "cb-announce")


def test_rendered_extensions_passes_asterisklint(tmp_path: Path, files: dict[str, str]) -> None:
    exe = shutil.which("asterisklint")
    assert exe is not None, "asterisklint is a dev dependency (pyproject [dev])"
    (tmp_path / "extensions.conf").write_text(files["extensions.conf"], encoding="utf-8")
    proc = subprocess.run(
        [exe, "dialplan-check", "extensions.conf"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and "W_" not in proc.stderr and "E_" not in proc.stderr, proc.stderr


def test_asterisklint_does_catch_a_broken_dialplan(tmp_path: Path) -> None:
    exe = shutil.which("asterisklint")
    assert exe is not None
    (tmp_path / "extensions.conf").write_text("[ctx]\nexten => s,1,Dial(PJSIP/x\n", encoding="utf-8")
    proc = subprocess.run(
        [exe, "dialplan-check", "extensions.conf"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 or proc.stderr.strip()


def test_simulator_parses_the_rendered_dialplan(files: dict[str, str]) -> None:
    sim = pytest.importorskip("callbridge.sim.dialplan")
    plan = sim.parse_extensions(files["extensions.conf"])
    assert plan.find("cb-inbound", "12345") is not None
    assert plan.find("cb-conf", "4711") is not None
    assert plan.find("cb-to-110", "s") is not None
    assert "CB_OVERFLOW_12345" in plan.globals


def test_trunks_carry_the_number(files: dict[str, str]) -> None:
    pjsip = files["pjsip_callbridge.conf"]
    tmpl = pjsip[pjsip.index("[cb-trunk-t-110](!)") :].split("\n\n")[0]
    assert "send_pai = yes" in tmpl and "trust_id_outbound = yes" in tmpl
    assert "[hotline-110-backup](cb-site-endpoint,cb-trunk-t-110)" in pjsip
    water = pjsip[pjsip.index("[cb-trunk-t-water](!)") :].split("\n\n")[0]
    assert "send_pai = no" in water
    assert endpoint_of("PJSIP/110@hotline-110") == "hotline-110"
    assert endpoint_of("PJSIP/carrier") == "carrier"
    assert endpoint_of("Local/2001@sim") is None


def test_queues_features_confbridge(files: dict[str, str]) -> None:
    queues = files["queues.conf"]
    q = queues[queues.index("[q-12345]") :].split("\n\n")[0]
    assert "strategy = leastrecent" in q
    assert q.count("member => PJSIP/agent100") == 3
    features = files["features.conf"]
    assert "blindxfer = #1" in features and "atxfer = *2" in features
    assert "featuredigittimeout = 2000" in features
    conf = files["confbridge.conf"]
    assert "[cb_bridge]\ntype = bridge" in conf and "[cb_user]\ntype = user" in conf


def test_manager_user_has_least_privilege_and_no_secret(files: dict[str, str]) -> None:
    manager = files["manager.conf"]
    assert "secret = ${CALLBRIDGE_AMI_SECRET}" in manager
    assert f"read = {AMI_READ}" in manager and f"write = {AMI_WRITE}" in manager
    for power in ("command", "config", "system,call,agent,user,dtmf,dialplan,reporting,command", "all"):
        assert power not in AMI_WRITE.split(",")
    assert "all" not in AMI_READ.split(",")


def test_rendering_follows_the_yaml() -> None:
    plan = parse_dialplan_text(
        'hotlines:\n  12345: {name: a, kind: service, dids: ["12345", "88881234"], agent_queues: [q]}\n'
        "  110: {name: b, kind: emergency, agent_queues: [q110]}\n"
        "queues: {q: {members: [PJSIP/a1]}, q110: {strategy: linear, members: [Local/1@sim]}}\n"
        'rules: {r: {from_hotline: "12345", to_hotline: "110", code: "*1", failure: [back_to_agent]}}\n'
    )
    ext = render_all(plan)["extensions.conf"]
    assert "exten => 88881234,1," in ext
    assert "Queue(q110,t,,,${CB_TIMEOUT})" in _context(ext, "cb-to-110")
    assert "[cb-expert-" not in ext


def test_committed_config_asterisk_is_up_to_date() -> None:
    assert (
        cli_main(["render-asterisk", str(REPO / "dialplans"), "-o", str(REPO / "config" / "asterisk"), "--check"]) == 0
    )


def test_render_cli_writes_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "callbridge", "render-asterisk", str(REPO / "dialplans"), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(render_all(load_dialplan(REPO / "dialplans")))
    bad = Path(__file__).parent / "broken" / "22_overflow_loop.yaml"
    assert cli_main(["render-asterisk", str(bad), "-o", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()
