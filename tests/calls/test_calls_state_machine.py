"""The call state machine is data: every state is reachable, ENDED is final, odd transitions are logged."""

from __future__ import annotations

import logging

import structlog
from structlog.testing import capture_logs

from callbridge.calls.model import TRANSITIONS, Call, CallState, is_expected
from callbridge.calls.tracker import CallTracker


def test_every_state_is_reachable_from_offered_and_ends() -> None:
    reached = {CallState.OFFERED}
    frontier = [CallState.OFFERED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(CallState)
    assert TRANSITIONS[CallState.ENDED] == frozenset()
    assert all(CallState.ENDED in TRANSITIONS[s] for s in CallState if s is not CallState.ENDED)


def test_unexpected_transition_is_logged_and_applied_without_raising() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    call = Call(call_id="c1", created=0.0, state=CallState.ENDED)
    assert not is_expected(CallState.ENDED, CallState.ANSWERED)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))  # conftest restores
    with capture_logs() as logs:
        tracker.state.set_state(call, CallState.ANSWERED, "test")
    assert call.state is CallState.ANSWERED, "the PBX is the source of truth"
    assert [entry["event"] for entry in logs] == ["call.unexpected_transition"]
