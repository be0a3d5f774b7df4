"""The extensions.conf subset: parsing the lab file, patterns, ${} and $[] expansion."""

from __future__ import annotations

import pytest

from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.sim.clock import Scheduler
from callbridge.sim.config import LAB_DIALPLAN
from callbridge.sim.dialplan import evaluate, expand, parse_extensions, parse_gotoif, pattern_regex, split_args
from callbridge.sim.endpoints import Endpoints
from callbridge.sim.pbx import APPS, Pbx
from callbridge.sim.predial import PREDIAL_APPS, callee_predial
from callbridge.sim.world import World
from tests.conftest import LAB as LAB_DIR
from tests.conftest import REPO

LAB = LAB_DIR / "etc" / "extensions.conf"


@pytest.fixture(scope="module")
def lab_text() -> str:
    if not LAB.is_file():
        pytest.fail(f"lab extensions.conf not found at {LAB}")
    return LAB.read_text(encoding="utf-8")


def test_parses_the_lab_file(lab_text: str) -> None:
    plan = parse_extensions(lab_text)
    assert plan.globals == {"HOTLINE_TIMEOUT": "30"}
    assert {"sim", "internal", "trunk", "from-agents", "from-trunk"} <= set(plan.contexts)
    queue = plan.find("internal", "queue-support")
    assert queue is not None and queue.pattern == "_queue-."
    assert [s.app for s in queue.steps.values()] == ["NoOp", "Answer", "Queue", "NoOp", "GotoIf", "Hangup"]
    assert queue.steps[3].data == "${EXTEN:6},tT,,,600"


def test_builtin_dialplan_matches_the_lab(lab_text: str) -> None:
    lab, builtin = parse_extensions(lab_text), parse_extensions(LAB_DIALPLAN)
    for name, ctx in lab.contexts.items():
        for ext in ctx.extensions:
            if ext.pattern == "echo":  # Echo() is not simulated
                continue
            mine = [e for e in builtin.contexts[name].extensions if e.pattern == ext.pattern]
            assert mine, f"{name},{ext.pattern} missing from the built-in dialplan"
            assert [(s.app, s.data) for s in mine[0].steps.values()] == [(s.app, s.data) for s in ext.steps.values()]


def test_include_and_exact_before_pattern(lab_text: str) -> None:
    plan = parse_extensions(lab_text)
    assert plan.find("from-agents", "1002").pattern == "_100X"  # type: ignore[union-attr]
    assert plan.find("from-trunk", "4008000300").pattern == "4008000300"  # type: ignore[union-attr]
    assert plan.find("from-trunk", "4008000301").pattern == "_X."  # type: ignore[union-attr]
    assert plan.find("nowhere", "1") is None


@pytest.mark.parametrize(
    ("pattern", "exten", "matches"),
    [
        ("_co[n]f-.", "conf-room1", True),
        ("_conf-.", "conf-room1", False),  # n is the pattern letter N: [2-9]
        ("_100X", "1003", True),
        ("_100X", "100", False),
        ("_NXX", "211", True),
        ("_nxx", "211", True),
        ("_NXX", "111", False),
        ("_ZX", "09", False),
        ("_X.", "4008000300", True),
        ("_[a-z].", "alice", True),
        ("_X!", "1", True),
    ],
)
def test_patterns(pattern: str, exten: str, matches: bool) -> None:
    assert bool(pattern_regex(pattern).fullmatch(exten)) is matches


def test_expansion() -> None:
    values = {"EXTEN": "conf-room1", "CALLERID(num)": "13800138000", "EMPTY": "", "A": "WITHDRAW", "B": "2001"}
    look = values.get
    assert expand("join ${EXTEN:5}", lambda n: look(n, "")) == "join room1"
    assert expand("${EXTEN:0:4}|${EXTEN:-5}", lambda n: look(n, "")) == "conf|room1"
    assert expand("from ${CALLERID(num)} $5", lambda n: look(n, "")) == "from 13800138000 $5"
    cond = expand('$["${A}" = "WITHDRAW" & "${B}" != ""]', lambda n: look(n, ""))
    assert cond == "1"
    assert expand('$["${EMPTY}" != ""]', lambda n: look(n, "")) == "0"


def test_expressions() -> None:
    assert evaluate("1 + 2 * 3") in ("9", "7")  # left to right is enough for the dialplans we run
    assert evaluate('"a" = "a" | 0') == "1"
    assert evaluate("5 > 3") == "1"
    assert evaluate("!0") == "1"


def test_gotoif_and_args() -> None:
    assert parse_gotoif("1?2001,1") == ("1", "2001,1", "")
    assert parse_gotoif("0?yes:no") == ("0", "yes", "no")
    assert split_args('PJSIP/a&PJSIP/b,30,tT') == ["PJSIP/a&PJSIP/b", "30", "tT"]
    assert split_args("Name,k: v(1,2),x") == ["Name", "k: v(1,2)", "x"]


def test_labels_and_same_lines() -> None:
    plan = parse_extensions("[c]\nexten => s,1,NoOp()\n same => n(done),Hangup() ; comment\n")
    ext = plan.find("c", "s")
    assert ext is not None and ext.labels == {"done": 2} and ext.steps[2].app == "Hangup"


def test_rendered_dialplan_uses_only_simulated_applications() -> None:
    plan = parse_extensions(render_extensions(load_dialplan(REPO / "dialplans")))
    assert {"cb-inbound", "cb-back", "cb-conf", "cb-hold"} <= set(plan.contexts)
    apps = {s.app.lower() for c in plan.contexts.values() for e in c.extensions for s in e.steps.values()}
    assert apps <= set(APPS) | {"return"}, f"not simulated: {sorted(apps - set(APPS))}"
    # Return ends the pre-dial handlers a Queue b() names, which sim/predial.py runs with PREDIAL_APPS only
    named = [callee_predial(s.data) for c in plan.contexts.values() for e in c.extensions for s in e.steps.values()
             if s.app == "Queue"]  # fmt: skip
    handlers = {location[0] for location in named if location is not None}
    assert handlers == {"cb-expert-seat"}
    for name, ctx in plan.contexts.items():
        used = {s.app.lower() for e in ctx.extensions for s in e.steps.values()}
        assert ("return" in used) == (name in handlers) and (name not in handlers or used <= PREDIAL_APPS | {"return"})
    for ctx in plan.contexts.values():  # every label a Goto/GotoIf names exists
        for ext in ctx.extensions:
            for step in ext.steps.values():
                if step.app.lower() == "goto" and step.data.count(",") == 2:
                    target_ctx, target_ext, prio = step.data.split(",")
                    if "$" not in step.data and not prio.isdigit():
                        found = plan.find(target_ctx, target_ext)
                        assert found is not None and prio in found.labels, step


def test_unknown_application_hangs_up_like_asterisk() -> None:
    world = World(Scheduler(), 1)
    events: list[str] = []
    world.subscribe(lambda e: events.append(e[0]))
    pbx = Pbx(world, parse_extensions("[c]\nexten => s,1,Frobnicate(1)\n same => n,Wait(5)\n"), Endpoints())
    chan = world.new_channel("PJSIP/x", "c", "s")
    pbx.start(chan)
    world.sched.advance(1)
    assert chan.hungup and events[-1] == "Hangup"
