"""Legs that appear after the call's first channel hung up belong to the call while it lives on, and
are ignored only once the call has ended (issue 16, point 2)."""

from __future__ import annotations

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.testing.replay import events_from_raw, replay_events
from tests.calls.traces import case_path, replay_case

CASE = "caller_side_transfers_the_agent"


def test_a_leg_dialled_after_the_first_channel_left_is_tracked() -> None:
    derived, tracker = replay_case(CASE)
    assert [e.data()["agent"] for e in derived if isinstance(e, ce.CallAnswered)] == ["agent1001", "agent1003"]
    (outcome,) = [e for e in derived if isinstance(e, ce.CallTransferEnded)]
    assert (outcome.outcome, outcome.answered_by, outcome.transferee.split("-")[0]) == (
        "completed", "agent1003", "PJSIP/agent1001")  # fmt: skip
    (ended,) = [e for e in derived if isinstance(e, ce.CallEnded)]
    assert derived[-1] is ended and ended.call_id == "1700000000.1" and ended.answered
    assert not tracker.calls and not tracker.channels


def test_mid_call_the_new_leg_is_a_party_of_the_call() -> None:
    events = list(events_from_raw(case_path(CASE).read_bytes()))
    bridged = [i for i, e in enumerate(events) if isinstance(e, ami.BridgeEnter)][-1]
    _, tracker = replay_events(events[: bridged + 1])
    assert "1700000000.1" not in tracker.channels, "the first channel is gone"
    assert sorted(p.name.split("-")[0] for p in tracker.parties("1700000000.1")) == [
        "PJSIP/agent1001", "PJSIP/agent1003"]  # fmt: skip


def test_a_leg_of_a_call_that_already_ended_is_still_ignored() -> None:
    events = list(events_from_raw(case_path(CASE).read_bytes()))
    late = next(e for e in events if isinstance(e, ami.Newchannel) and e.snap.channel.startswith("PJSIP/agent1003"))
    derived, tracker = replay_events([*events, late])
    assert not tracker.calls and not tracker.channels
    assert sum(isinstance(e, ce.CallEnded) for e in derived) == 1
