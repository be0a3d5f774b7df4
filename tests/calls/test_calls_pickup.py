"""Call pickup (directed and ``*8`` group): the picked call is answered by the picker, and the picker's own
channel is no unanswered call (issue 16, point 7)."""

from __future__ import annotations

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.domain import DomainEvent
from callbridge.testing.replay import events_from_raw
from tests.calls.traces import case_path, replay_case


def _ended(derived: list[DomainEvent], call_id: str) -> ce.CallEnded:
    (ended,) = [e for e in derived if isinstance(e, ce.CallEnded) and e.call_id == call_id]
    return ended


@pytest.mark.parametrize("case", ["pickup_directed", "pickup_group"])
def test_the_picked_call_is_answered_by_the_picker(case: str) -> None:
    derived, _ = replay_case(case)
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert (answered.call_id, answered.agent, answered.agent_num) == ("1700000000.1", "agent1003", "1003")
    assert answered.agent_channel == "PJSIP/agent1003-00000009"
    caller = _ended(derived, "1700000000.1")
    assert caller.answered and caller.reason == "hangup"


@pytest.mark.parametrize("case", ["pickup_directed", "pickup_group"])
def test_the_pickers_own_leg_is_no_phantom_unanswered_call(case: str) -> None:
    derived, _ = replay_case(case)
    picker = _ended(derived, "1700000000.9")
    assert picker.reason == "pickup" and picker.answered
    assert not [e for e in derived if e.call_id == "1700000000.9" and e.TYPE in ("call.ringing", "call.answered")]


def test_the_pickup_event_is_decoded_with_its_target() -> None:
    (pickup,) = [e for e in events_from_raw(case_path("pickup_directed").read_bytes()) if isinstance(e, ami.Pickup)]
    assert pickup.snap.channel == "PJSIP/agent1003-00000009" and pickup.target is not None
    assert (pickup.target.channel, pickup.target.linkedid) == ("PJSIP/agent1002-00000002", "1700000000.1")
