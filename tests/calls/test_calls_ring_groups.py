"""Ring groups and queues ringing several agents: the losers' DialEnd CANCEL after the winner's answer
changes nothing (issue 16, point 4)."""

from __future__ import annotations

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.testing.replay import events_from_raw, replay_events
from tests.calls.traces import case_path, replay_case


def _state_after(case: str, stop: type[ami.AmiEvent], nth: int = -1) -> CallState:
    events = list(events_from_raw(case_path(case).read_bytes()))
    at = [i for i, e in enumerate(events) if isinstance(e, stop)][nth]
    _, tracker = replay_events(events[: at + 1])
    (call,) = tracker.calls.values()
    return call.state


@pytest.mark.parametrize(("case", "winner", "queue"), [("ring_group_answered_elsewhere", "agent1002", ""),
                                                       ("queue_ringall_answered_elsewhere", "agent1001", "support")])
def test_the_cancel_of_the_other_legs_leaves_the_call_answered(case: str, winner: str, queue: str) -> None:
    assert _state_after(case, ami.DialEnd) == CallState.ANSWERED, "right after the losers' CANCEL"
    assert _state_after(case, ami.BridgeEnter) == CallState.ANSWERED, "and while bridged"
    derived, _ = replay_case(case)
    answered = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert [(a.agent, a.queue) for a in answered] == [(winner, queue)]
    rung = [e for e in derived if isinstance(e, ce.CallRinging)]
    assert sorted(r.agent for r in rung) == ["agent1001", "agent1002"] and {r.queue for r in rung} == {queue}


def test_a_leg_failing_while_another_still_rings_keeps_the_call_ringing() -> None:
    events = list(events_from_raw(case_path("ring_group_answered_elsewhere").read_bytes()))
    # the same ring group, but agent1001 turns out busy before anyone answers
    busy = [e for e in events if not (isinstance(e, ami.DialEnd) and e.dial_status == "CANCEL")]
    first_answer = next(i for i, e in enumerate(busy) if isinstance(e, ami.DialEnd))
    loser = next(e for e in events if isinstance(e, ami.DialEnd) and e.dial_status == "CANCEL")
    _, tracker = replay_events([*busy[:first_answer], ami.DialEnd(snap=loser.snap, dest=loser.dest,
                                                                   dial_status="BUSY", forward="")])  # fmt: skip
    (call,) = tracker.calls.values()
    assert call.state == CallState.RINGING, "agent1002 still rings"
