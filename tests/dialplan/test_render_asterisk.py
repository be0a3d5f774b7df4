"""`callbridge render-asterisk`: the Asterisk side rendered from the example city dialplan."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.cli import main as cli_main
from callbridge.dialplan import Dialplan, load_dialplan, parse_dialplan_text
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.dialplan.render_conf import AMI_READ, AMI_WRITE, render_all
from callbridge.dialplan.render_site import endpoint_of
from callbridge.dialplan.site import Site, load_site, parse_site_text
from callbridge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
#: the smallest site file: the carrier's address, one host for every trunk and agent
SITE_MIN = "carrier: {match: [192.0.2.1]}\ntrunks: {default_host: 192.0.2.2}\nagents: {default_host: 192.0.2.3}\n" \
    "local_seats: {sim: \"PJSIP/agent${EXTEN}\"}\n"
#: the applications docs/ARCHITECTURE.md allows (the simulator interprets exactly these)
ALLOWED_APPS = {
    "Answer", "Wait", "NoOp", "Set", "Dial", "Queue", "ConfBridge", "MusicOnHold", "Playback", "UserEvent",
    "Goto", "GotoIf", "Hangup",
}  # fmt: skip


@pytest.fixture(scope="module")
def city() -> Dialplan:
    return load_dialplan(REPO / "dialplans")


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(REPO / "config" / "asterisk-site.yaml")


@pytest.fixture(scope="module")
def files(city: Dialplan, site: Site) -> dict[str, str]:
    return render_all(city, site)


#: the simulator's extensions.conf (no site), as the e2e tests load it
@pytest.fixture(scope="module")
def sim_ext(city: Dialplan) -> str:
    return render_extensions(city)


def _context(text: str, name: str) -> str:
    start = text.index(f"[{name}]\n")
    end = text.find("\n[", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_extensions_has_every_context_of_the_contract(files: dict[str, str]) -> None:
    ext = files["extensions_callbridge.conf"]
    for ctx in ("cb-inbound", "cb-to-110", "cb-to-120", "cb-to-12345", "cb-expert-119", "cb-conf", "cb-back",
                "cb-overflow", "cb-announce", "cb-hold"):  # fmt: skip
        assert f"[{ctx}]\n" in ext, ctx


def test_extensions_uses_only_the_documented_applications(files: dict[str, str]) -> None:
    ext = files["extensions_callbridge.conf"]
    apps = set(re.findall(r"^(?:exten => [^,]+,1|\s*same => n(?:\([a-z0-9]+\))?),([A-Za-z]+)\(", ext, re.M))
    assert apps and apps <= ALLOWED_APPS | {"Return"}, apps - ALLOWED_APPS
    # Return only ends a pre-dial handler (the simulator runs those up to it: callbridge/sim/predial.py)
    assert ext.count("Return()") == _context(ext, "cb-expert-seat").count("Return()") == 2


def test_expert_seats_ring_showing_the_callers_number(files: dict[str, str]) -> None:
    """Every expert queue runs cb-expert-seat on each seat before ringing it: the seat's connected line is
    the caller's number (CB_CALLER_NUM), kept by an interception routine while it rings (an attended
    transfer's Local half forwards the sending agent's id); once up, updates pass unchanged."""
    ext = files["extensions_callbridge.conf"]
    expert = _context(ext, "cb-expert-119")
    assert "Queue(q-119-expert,tb(cb-expert-seat^s^1),,,${CB_TIMEOUT})" in expert
    attended = expert[expert.index("exten => 119,1"):]  # Atxfer's entry flags the consultation leg
    assert attended.index("Set(__CB_ATTENDED=1)") < attended.index("Goto(s,1)")
    seat = _context(ext, "cb-expert-seat")
    steps = [line.split(",", 1)[1] for line in seat.splitlines() if line.startswith(("exten", " same"))]
    assert steps == [
        "1,NoOp(callbridge expert seat ${CHANNEL} for transfer ${CB_XFER_ID})",
        'GotoIf($["${CB_CALLER_NUM}" = ""]?done)',
        "Set(CB_SEAT=${CHANNEL})",
        "Set(CONNECTED_LINE_SEND_SUB=cb-expert-seat,update,1)",
        "Goto(update,show)",
        "Return()",
        "1,NoOp(callbridge expert seat ${CHANNEL}: connected-line update)",
        'GotoIf($["${CHANNEL}" = "${CB_SEAT}"]?:done)',
        'GotoIf($["${CHANNEL(state)}" = "Up"]?done)',
        'GotoIf($["${CB_ATTENDED}" = "1"]?:number)',
        "Set(CONNECTEDLINE(name,i)=)",
        "Set(CONNECTEDLINE(num,i)=${CB_CALLER_NUM})",
        "Return()",
    ]


def test_transfer_context_tries_lines_in_order_then_goes_back(files: dict[str, str]) -> None:
    ctx = _context(files["extensions_callbridge.conf"], "cb-to-110")
    primary = ctx.index("Dial(PJSIP/110@hotline-110,${CB_TIMEOUT})")
    backup = ctx.index("Dial(PJSIP/110@hotline-110-backup,${CB_TIMEOUT})")
    back = ctx.index("Goto(cb-back,s,1)")
    assert primary < backup < back
    assert "Set(CALLERID(num)=${CB_CALLER_NUM})" in ctx
    assert "UserEvent(CallbridgeLine,XferId: ${CB_XFER_ID},Line: 1,Status: ${DIALSTATUS})" in ctx
    assert "UserEvent(CallbridgeLine,XferId: ${CB_XFER_ID},Line: 2,Status: ${DIALSTATUS})" in ctx


def test_local_hotline_is_queued_and_expert_queue_takes_priority(files: dict[str, str]) -> None:
    ext = files["extensions_callbridge.conf"]
    assert "Queue(q-12345,t,,,${CB_TIMEOUT})" in _context(ext, "cb-to-12345")
    expert = _context(ext, "cb-expert-110")
    assert expert.index("Set(QUEUE_PRIO=${CB_PRIO})") < expert.index("Queue(q-110-expert,")


def test_emergency_callers_are_never_hung_up(files: dict[str, str]) -> None:
    inbound = _context(files["extensions_callbridge.conf"], "cb-inbound")
    block = inbound[inbound.index("exten => 110,1") : inbound.index("exten => 119,1")]
    assert "Hangup" not in block
    assert "Goto(cb-inbound,110,queue)" in block
    assert '$["${QUEUESTATUS}" = "WITHDRAW"]?cb-overflow,${QUEUE_WITHDRAW_INFO},1' in block
    assert 'GotoIf($["${CB_OVERFLOW_110}" = ""]?queue:overflow)' in block
    back = _context(files["extensions_callbridge.conf"], "cb-back")
    assert "Dial(${CB_BACK},30)" in back
    assert back.count("Hangup()") == 1  # only after the sending agent answered


def test_overflow_and_conference_and_announcement(files: dict[str, str]) -> None:
    ext = files["extensions_callbridge.conf"]
    assert "exten => of-12345-remote,1," in _context(ext, "cb-overflow")
    assert "Queue(q-12345-remote,t,,,600)" in ext
    assert "Dial(PJSIP/110@hotline-110-region,30)" in ext
    assert "ConfBridge(${EXTEN},cb_bridge,cb_user)" in _context(ext, "cb-conf")
    assert "Playback(${CB_PROMPTS}callbridge-nuisance)" in _context(ext, "cb-announce")
    assert "CB_PROMPTS=/var/lib/asterisk/sounds/callbridge/\n" in ext


def test_rendered_extensions_passes_asterisklint(tmp_path: Path, files: dict[str, str], sim_ext: str) -> None:
    exe = shutil.which("asterisklint")
    assert exe is not None, "asterisklint is a dev dependency (pyproject [dev])"
    # as the site includes it: its own [general] and [globals] first
    included = files["extensions_callbridge.conf"].replace("[globals](+)", "")
    (tmp_path / "extensions.conf").write_text("[general]\n\n[globals]\n" + included, encoding="utf-8")
    proc = subprocess.run(
        [exe, "dialplan-check", "extensions.conf"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and "W_" not in proc.stderr and "E_" not in proc.stderr, proc.stderr
    (tmp_path / "extensions.conf").write_text(sim_ext, encoding="utf-8")
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


def test_simulator_parses_the_rendered_dialplan(sim_ext: str) -> None:
    sim = pytest.importorskip("callbridge.sim.dialplan")
    plan = sim.parse_extensions(sim_ext)
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
    queues = files["queues_callbridge.conf"]
    q = queues[queues.index("[q-12345]") :].split("\n\n")[0]
    assert "strategy = leastrecent" in q
    assert q.count("member => PJSIP/agent100") == 3
    features = files["features_callbridge.conf"]
    assert "blindxfer = #1" in features and "atxfer = *2" in features
    assert "featuredigittimeout = 2000" in features
    conf = files["confbridge_callbridge.conf"]
    assert "[cb_bridge]\ntype = bridge" in conf and "[cb_user]\ntype = user" in conf


def test_manager_user_has_least_privilege_and_no_secret(files: dict[str, str]) -> None:
    manager = files["manager.d/callbridge.conf"]
    assert "secret = ${CALLBRIDGE_AMI_SECRET}" in manager
    assert f"read = {AMI_READ}" in manager and f"write = {AMI_WRITE}" in manager
    for power in ("command", "config", "system,call,agent,user,dtmf,dialplan,reporting,command", "all"):
        assert power not in AMI_WRITE.split(",")
    assert "all" not in AMI_READ.split(",")


def test_rendering_follows_the_yaml() -> None:
    plan = parse_dialplan_text(
        'hotlines:\n  12345: {name: a, kind: service, dids: ["12345", "88881234"], agent_queues: [q]}\n'
        "  110: {name: b, kind: emergency, agent_queues: [q110], inbound_trunks: [c]}\n"
        "trunks: {c: {lines: [PJSIP/carrier]}}\n"
        "queues: {q: {members: [PJSIP/a1]}, q110: {strategy: linear, members: [Local/1@sim]}}\n"
        'rules: {r: {from_hotline: "12345", to_hotline: "110", code: "*1", failure: [back_to_agent]}}\n'
    )
    ext = render_all(plan, parse_site_text(SITE_MIN))["extensions_callbridge.conf"]
    assert "exten => 88881234,1," in ext
    assert "Queue(q110,t,,,${CB_TIMEOUT})" in _context(ext, "cb-to-110")
    assert "[cb-expert-" not in ext


def test_committed_config_asterisk_is_up_to_date() -> None:
    assert (
        cli_main(["render-asterisk", str(REPO / "dialplans"), "-o", str(REPO / "config" / "asterisk"), "--check",
                  "--site", str(REPO / "config" / "asterisk-site.yaml")]) == 0
    )


def test_render_cli_writes_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "callbridge", "render-asterisk", str(REPO / "dialplans"), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    site = load_site(REPO / "config/asterisk-site.yaml")
    assert written == sorted(render_all(load_dialplan(REPO / "dialplans"), site))
    bad = Path(__file__).parent / "broken" / "22_overflow_loop.yaml"
    assert cli_main(["render-asterisk", str(bad), "-o", str(tmp_path / "x"), "--site",
                     str(REPO / "config/asterisk-site.yaml")]) == 1
    assert not (tmp_path / "x").exists()


def _sections(text: str) -> dict[str, list[dict[str, str]]]:
    """PJSIP-style sections: name → every section of that name (an endpoint and its aor share one)."""
    out: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            current = {"(templates)": line[line.index("]") + 1 :]}
            out.setdefault(line[1 : line.index("]")], []).append(current)
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return out


def test_every_endpoint_the_dialplan_dials_has_an_aor_with_a_contact(city: Dialplan, files: dict[str, str]) -> None:
    sections = _sections(files["pjsip_callbridge.conf"])
    dialled = {endpoint_of(line) for t in city.trunks.values() for line in t.lines if "@" in line}
    dialled |= {endpoint_of(m) for q in city.queues.values() for m in q.members} - {None}
    dialled |= {f"agent{m.split('/')[1].split('@')[0]}" for q in city.queues.values() for m in q.members
                if m.startswith("Local/")}  # fmt: skip  (Local/2101@sim rings PJSIP/agent2101)
    assert len(dialled) > 30
    for ep in dialled:
        kinds = {s.get("type", "endpoint" if "cb-site-endpoint" in s["(templates)"] or "cb-agent" in s["(templates)"]
                       else "?") for s in sections.get(str(ep), [])}  # fmt: skip
        assert "aor" in kinds and "endpoint" in kinds, (ep, sections.get(str(ep)))
        aor = next(s for s in sections[str(ep)] if s.get("type") == "aor")
        assert aor["contact"].startswith("sip:"), ep
    assert _sections(files["pjsip_callbridge.conf"])["hotline-110-backup"][1]["qualify_frequency"] == "30"
    assert sections["cb-site-endpoint"][0]["transport"] == "cb-transport-udp"
    assert sections["cb-transport-udp"][0]["bind"] == "0.0.0.0:5060"


def test_the_carrier_is_identified_by_address_and_lands_in_cb_inbound(files: dict[str, str]) -> None:
    pjsip = files["pjsip_callbridge.conf"]
    sections = _sections(pjsip)
    assert sections["carrier-identify"][0] == {"(templates)": "", "type": "identify", "endpoint": "carrier",
                                               "match": "203.0.113.10"}  # fmt: skip
    assert "[carrier](cb-site-endpoint,cb-trunk-t-carrier)" in pjsip
    assert sections["cb-trunk-t-carrier"][0]["context"] == "cb-inbound"


def test_local_seats_and_the_attended_entry_are_rendered(files: dict[str, str]) -> None:
    ext = files["extensions_callbridge.conf"]
    sim = _context(ext, "sim")
    assert "exten => _X.,1,NoOp(callbridge seat ${EXTEN})" in sim and "Dial(PJSIP/agent${EXTEN},,tT)" in sim
    # an AMI Atxfer dials its Exten as DTMF: a digits extension, never only "s"
    for ctx, number in (("cb-expert-119", "119"), ("cb-to-110", "110"), ("cb-to-96116", "96116")):
        block = _context(ext, ctx)
        flag = " same => n,Set(__CB_ATTENDED=1)\n" if ctx.startswith("cb-expert-") else ""  # see cb-expert-seat
        entry = f"exten => {number},1,NoOp(callbridge attended transfer ${{CB_XFER_ID}})\n"
        assert f"{entry}{flag} same => n,Goto(s,1)" in block
    assert ext.count("[globals](+)") == 1 and "[general]" not in ext


def test_a_site_file_that_misses_an_endpoint_is_refused_naming_it(city: Dialplan) -> None:
    text = SITE_MIN.replace("trunks: {default_host: 192.0.2.2}\n", "trunks: {endpoints: {hotline-110: "
                            "{contact: 'sip:110@192.0.2.9'}}}\n").replace("local_seats", "x_local_seats")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        render_all(city, parse_site_text(text.replace("x_local_seats", "local_seats")))
    fields = {p.field for p in err.value.problems}
    assert "trunks.endpoints.hotline-110-backup" in fields and "trunks.endpoints.hotline-110" not in fields
    with pytest.raises(ConfigError) as err:
        render_all(city, parse_site_text(SITE_MIN.replace('local_seats: {sim: "PJSIP/agent${EXTEN}"}\n', "")))
    assert [p.field for p in err.value.problems] == ["local_seats.sim"]
    with pytest.raises(ConfigError) as err:
        parse_site_text(SITE_MIN + "transprt: {name: x}\n", "site.yaml")
    assert str(err.value.problems[0]).startswith("site.yaml:5:1: error: transprt: unknown key 'transprt'")


def test_envsubst_fills_the_secret_on_its_line_only(tmp_path: Path, files: dict[str, str]) -> None:
    """The deploy step of config/asterisk/README.md; a comment naming the variable would get the secret too."""
    exe = shutil.which("envsubst")
    assert exe is not None, "envsubst (gettext-base) is part of Debian's base system"
    readme = (REPO / "config" / "asterisk" / "README.md").read_text("utf-8")
    assert "envsubst '$CALLBRIDGE_AMI_SECRET' < manager.d/callbridge.conf" in readme
    proc = subprocess.run([exe, "$CALLBRIDGE_AMI_SECRET"], input=files["manager.d/callbridge.conf"], text=True,
                          capture_output=True, env={"CALLBRIDGE_AMI_SECRET": "s3cr3t-x"}, check=True)  # fmt: skip
    hits = [line for line in proc.stdout.splitlines() if "s3cr3t-x" in line]
    assert hits == ["secret = s3cr3t-x"]
    assert "[general]" not in files["manager.d/callbridge.conf"]


def test_music_on_hold_and_prompts_are_shipped(tmp_path: Path, files: dict[str, str]) -> None:
    moh = _sections(files["musiconhold_callbridge.conf"])["callbridge"][0]
    assert moh["directory"] == "/var/lib/asterisk/sounds/callbridge/moh" and moh["mode"] == "files"
    assert "musicclass = callbridge" in files["queues_callbridge.conf"]
    assert "moh_suggest = callbridge" in files["pjsip_callbridge.conf"]
    proc = subprocess.run(["bash", str(REPO / "scripts" / "make-prompts"), str(tmp_path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for wav in (tmp_path / "callbridge-nuisance.wav", tmp_path / "moh" / "callbridge-hold.wav"):
        head = wav.read_bytes()[:44]
        assert head[:4] == b"RIFF" and head[8:12] == b"WAVE", wav
        assert int.from_bytes(head[24:28], "little") == 8000 and int.from_bytes(head[22:24], "little") == 1, wav
