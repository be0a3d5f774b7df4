"""Attended transfers name their real parties whatever the Asterisk version sends (issue 16, point 3)."""

from __future__ import annotations

import pytest

from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.testing.replay import events_from_raw, replay_events
from tests.calls.traces import case_path, replay_case

CALLER = "PJSIP/trunk-in-00000001"
TARGET = "PJSIP/agent1002-0000000a"


@pytest.mark.parametrize("case", ["attended_to_ringing_target", "attended_without_party_headers",
                                  "attended_local_transferee"])  # fmt: skip
def test_the_transfer_names_the_real_transferee_and_target(case: str) -> None:
    derived, _ = replay_case(case)
    (xfer,) = [e for e in derived if isinstance(e, ce.CallTransferred)]
    assert (xfer.kind, xfer.transferee, xfer.target, xfer.result) == ("attended", CALLER, TARGET, "Success")
    assert xfer.transferer.startswith("PJSIP/agent1001-") and xfer.call_id == "1700000000.1"
    (outcome,) = [e for e in derived if isinstance(e, ce.CallTransferEnded)]
    assert (outcome.outcome, outcome.answered_by, outcome.call_id) == ("completed", "agent1002", "1700000000.1")


def test_a_transfer_to_a_ringing_target_completes_when_it_answers() -> None:
    events = list(events_from_raw(case_path("attended_to_ringing_target").read_bytes()))
    at = next(i for i, e in enumerate(events) if e.event_name == "AttendedTransfer")
    derived, tracker = replay_events(events[: at + 1])
    assert not [e for e in derived if isinstance(e, ce.CallTransferEnded)], "1002 still rings"
    assert tracker.calls["1700000000.1"].state == CallState.RINGING
    derived, tracker = replay_events(events)
    (outcome,) = [e for e in derived if isinstance(e, ce.CallTransferEnded)]
    answered = next(e for e in derived if isinstance(e, ce.CallAnswered) and e.agent == "agent1002")
    assert derived.index(answered) < derived.index(outcome) and outcome.wait_s > 0
