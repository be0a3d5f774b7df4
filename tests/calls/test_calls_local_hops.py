"""Local channels are hops, not parties: one real answer is one ``call.answered`` naming the real endpoint
(issue 16, point 5)."""

from __future__ import annotations

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.testing.replay import events_from_raw, replay_events
from tests.calls.traces import case_path, full_name, replay_case, replay_trace


@pytest.mark.parametrize(
    ("case", "rung", "answered", "queue"),
    [
        ("local_hop_dial", ["agent1002"], "agent1002", ""),
        ("call_forward_via_local", ["agent1001", "agent1003"], "agent1003", ""),
        ("queue_local_members", ["agent1002"], "agent1002", "support"),
    ],
)  # fmt: skip
def test_one_real_answer_is_one_call_answered(case: str, rung: list[str], answered: str, queue: str) -> None:
    derived, _ = replay_case(case)
    ringing = [e for e in derived if isinstance(e, ce.CallRinging)]
    assert [r.agent for r in ringing] == rung
    (answer,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert (answer.agent, answer.queue) == (answered, queue)
    assert answer.agent_channel.startswith(f"PJSIP/{answered}-") and answer.agent_num == answered[-4:]


@pytest.mark.parametrize("case", ["local_hop_dial", "call_forward_via_local", "queue_local_members"])
def test_the_call_agent_and_parties_are_the_real_phone(case: str) -> None:
    events = list(events_from_raw(case_path(case).read_bytes()))
    talking = [i for i, e in enumerate(events) if isinstance(e, ami.BridgeEnter)][-1]
    _, tracker = replay_events(events[: talking + 1])
    (call,) = tracker.calls.values()
    assert call.state == CallState.ANSWERED and call.agent.startswith("agent")
    parties = [p.name for p in tracker.parties(call.call_id)]
    assert parties[0].startswith("PJSIP/trunk-in-") and [p.split("-")[0] for p in parties[1:]] == [
        f"PJSIP/{call.agent}"]  # fmt: skip


def test_a_forward_keeps_the_call_ringing() -> None:
    events = list(events_from_raw(case_path("call_forward_via_local").read_bytes()))
    forward = next(i for i, e in enumerate(events) if isinstance(e, ami.DialEnd) and e.forward)
    _, tracker = replay_events(events[: forward + 1])
    (call,) = tracker.calls.values()
    assert call.state == CallState.RINGING, "the forward target is dialled next"


def test_a_local_phone_that_answers_in_the_dialplan_is_the_party() -> None:
    derived, _ = replay_trace(full_name("03"))
    answered = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert [a.agent for a in answered] == ["2001@sim"]
    assert [e.TYPE for e in derived] == ["call.offered", "call.ringing", "call.answered", "call.ended"]
