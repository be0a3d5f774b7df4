"""Local hops in general, not one recording: chained Local channels (``Local/a`` whose ``;2`` dials
``Local/b``, as a ``/n`` seat or a forwarding context does), racing a plain hop, and a pickup behind a hop.

Built with the documented-event builder of ``tests/fixtures/traces-cases`` (``tracebuild``), in memory. What
Asterisk does (core_local, app_dial, Asterisk 12 to 22): each ``;2`` answers its own Dial when its leg answers,
the answer is queued to its ``;1``, and only the outermost Dial (the caller's) decides who the caller gets;
the other legs of that Dial are cancelled and their hops hung up. ``call.answered`` names the party behind
the hop the caller's Dial answered, at that DialEnd.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from callbridge.calls import events as ce
from callbridge.calls.tracker import CallTracker
from callbridge.testing.replay import events_from_raw, replay_events

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "traces-cases"


def _builder() -> Any:
    if str(CASES) not in sys.path:
        sys.path.insert(0, str(CASES))
    return importlib.import_module("tracebuild")


def _replay(tr: Any) -> tuple[list[Any], CallTracker, list[float]]:
    raw = (_builder().BANNER + "".join(text for _, text in tr.frames)).encode()
    events = list(events_from_raw(raw))
    times = [t for t, text in tr.frames if text.startswith("Event:")]
    assert len(times) == len(events)
    derived, tracker = replay_events(events, CallTracker(), times)
    return derived, tracker, times


def _answer_inner(tr: Any, two: Any, leg: Any) -> None:
    tr.at(0.001).state(leg, "Up")
    tr.dial_end(two, leg, "ANSWER")
    tr.state(two, "Up")


def _lose(tr: Any, caller: Any, one: Any, rest: list[Any]) -> None:
    tr.dial_end(caller, one, "CANCEL")
    for ch in (one, *rest):
        tr.hangup(ch, 26, "Answered elsewhere")


@pytest.mark.parametrize("winner", ["chain", "plain"])
def test_a_chain_of_hops_races_a_plain_hop_and_the_outer_dial_decides(winner: str) -> None:
    """``Dial(Local/2301@seat&Local/2302@seat)``; seat 2301 is a chain (its ``;2`` dials ``Local/9001@hop/n``,
    whose ``;2`` dials agent2301), seat 2302 dials agent2302. Both phones answer, agent2302 first."""
    b = _builder()
    tr, caller = b.Trace("chain_race"), b.new_caller()
    tr.new(caller)
    tr.at(0.01).state(caller, "Up")
    a1, a2 = b.local_pair("2301", 4, caller.uid, "seat")
    c1, c2 = b.local_pair("2302", 5, caller.uid, "seat")
    h1, h2 = b.local_pair("9001", 6, caller.uid, "hop")
    ag1, ag2 = b.new_agent(2301, 2, caller.uid), b.new_agent(2302, 3, caller.uid)
    for one, two in ((a1, a2), (c1, c2)):
        tr.at(0.01).new(one)
        tr.new(two)
        tr.local_bridge(one, two)
        tr.dial_begin(caller, one, one.name.split("/")[1].rsplit("-", 1)[0])
    tr.new(h1)
    tr.new(h2)
    tr.local_bridge(h1, h2)
    tr.dial_begin(a2, h1, "9001@hop/n")
    b.ring(tr, h2, ag1, "PJSIP/agent2301")
    b.ring(tr, c2, ag2, "PJSIP/agent2302")
    tr.at(2.0)
    _answer_inner(tr, c2, ag2)  # agent2302 answers first …
    _answer_inner(tr, h2, ag1)  # … then agent2301, two hops deep
    _answer_inner(tr, a2, h1)
    outer_at = tr.at(0.002).t
    if winner == "chain":
        tr.state(a1, "Up")
        tr.dial_end(caller, a1, "ANSWER")
        _lose(tr, caller, c1, [c2, ag2])
    else:
        tr.state(c1, "Up")
        tr.dial_end(caller, c1, "ANSWER")
        _lose(tr, caller, a1, [a2, h1, h2, ag1])
    tr.at(10.0)
    b.caller_hangs_up(tr, caller, 16, "Normal Clearing")
    for ch in (a1, a2, h1, h2, ag1) if winner == "chain" else (c1, c2, ag2):
        tr.hangup(ch, 16, "Normal Clearing")
    derived, tracker, _ = _replay(tr)
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    expected = "agent2301" if winner == "chain" else "agent2302"
    assert (answered.agent, answered.ts) == (expected, outer_at)
    assert answered.agent_channel == (ag1 if winner == "chain" else ag2).name
    (ended,) = [e for e in derived if isinstance(e, ce.CallEnded)]
    assert ended.answered and not tracker.calls


def test_a_leg_picked_up_behind_a_hop_is_announced_as_the_picker_when_the_hop_answers() -> None:
    b = _builder()
    tr, caller = b.Trace("pickup_behind_hop"), b.new_caller()
    tr.new(caller)
    tr.at(0.01).state(caller, "Up")
    one, two = b.local_pair("1001", 4, caller.uid, "seat")
    agent = b.new_agent(1001, 2, caller.uid)
    tr.at(0.01).new(one)
    tr.new(two)
    tr.local_bridge(one, two)
    tr.dial_begin(caller, one, "Local/1001@seat")
    b.ring(tr, two, agent, "PJSIP/agent1001")
    picker = b.new_picker("*81001")
    tr.at(1.0).new(picker)
    tr.state(picker, "Up")
    tr.event("Pickup", [*picker.headers(), *agent.headers("Target")])
    tr.state(agent, "Up")
    tr.dial_end(two, agent, "ANSWER")
    tr.state(two, "Up")
    tr.hangup(picker, 26, "Answered elsewhere")
    outer_at = tr.at(0.002).t
    tr.state(one, "Up")
    tr.dial_end(caller, one, "ANSWER")
    tr.at(5.0)
    b.caller_hangs_up(tr, caller, 16, "Normal Clearing")
    for ch in (one, two, agent):
        tr.hangup(ch, 16, "Normal Clearing")
    derived, _, _ = _replay(tr)
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered) and e.call_id == caller.uid]
    assert (answered.agent, answered.agent_channel, answered.ts) == ("agent1003", picker.name, outer_at)
