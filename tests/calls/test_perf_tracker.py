"""The tracker's fast paths (snapshot unpacking, debug-log guard) change nothing observable."""

from __future__ import annotations

import logging

import structlog
from structlog.testing import capture_logs

from callbridge.ami.events import decode
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls.model import Call, CallState
from callbridge.calls.tracker import CallTracker
from tests.calls.traces import trace_bytes, trace_names


def _replay(messages: list[AmiMessage]) -> tuple[list[dict[str, object]], dict[str, object]]:
    tracker = CallTracker(hotline_of=lambda snap: "12345" if snap.context == "cb-inbound" else None)
    out: list[dict[str, object]] = []
    for msg in messages:
        if msg.kind == "event":
            out += [{"type": ev.TYPE, **ev.data()} for ev in tracker.feed(decode(msg), now=1.0)]
    return out, tracker.snapshot()


def test_lazy_and_built_messages_drive_the_tracker_identically() -> None:
    compared = 0
    for name in trace_names():
        lazy = [f for f in AmiFramer().feed(trace_bytes(name)) if isinstance(f, AmiMessage)]
        built = [AmiMessage(tuple(m.headers)) for m in lazy]
        fast, slow = _replay(lazy), _replay(built)
        assert fast == slow, name
        compared += len(fast[0])
    assert compared > 50, "the traces produce domain events"


def test_expected_transitions_log_at_debug_only_when_debug_is_on() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    call = Call(call_id="c1", created=0.0)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))  # conftest restores
    with capture_logs() as quiet:
        tracker.set_state(call, CallState.RINGING, "test")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    with capture_logs() as loud:
        tracker.set_state(call, CallState.ANSWERED, "test")
    assert call.state is CallState.ANSWERED
    assert quiet == [] and [e["event"] for e in loud] == ["call.transition"]
