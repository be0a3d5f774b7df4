"""The tracker joined mid-stream, fed duplicates, reordered or garbage events: it survives and leaks nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode, decode_headers
from callbridge.ami.framing import AmiMessage
from callbridge.calls.state import TOMBSTONES
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.testing.replay import replay_events
from tests.calls.traces import trace_events, trace_names


def _leftovers(t: CallTracker) -> dict[str, object]:
    waiting = [c.uniqueid for q in t.queues.values() for c in q.callers.values()]
    offers = [uid for q in t.queues.values() for uid in q.offers.values()]
    left = {"calls": list(t.calls), "channels": list(t.channels), "waiting": waiting, "offers": offers,
            "rooms": list(t.conferences)}  # fmt: skip
    return {k: v for k, v in left.items() if v}


def _comparable(derived: list[DomainEvent]) -> list[tuple[str, dict[str, object]]]:
    return [(e.TYPE, e.data()) for e in derived]


@pytest.mark.parametrize("name", trace_names())
def test_partial_attach_at_every_event(name: str) -> None:
    """Cut the first k events for every k: no exception, and nothing left once the final hang-ups came."""
    events = trace_events(name)
    for k in range(len(events) + 1):
        derived, tracker = replay_events(events[k:])
        assert not _leftovers(tracker), f"attached at event {k}: {_leftovers(tracker)}"
        for call_id in {e.call_id for e in derived if e.TYPE.startswith("call.")}:
            life = [e.TYPE for e in derived if e.call_id == call_id and e.TYPE.startswith("call.")]
            assert life[0] == "call.offered" and life[-1] == "call.ended", (k, life)


@pytest.mark.parametrize("name", trace_names())
def test_every_event_twice_derives_the_same_events(name: str) -> None:
    events = trace_events(name)
    once, _ = replay_events(events)
    twice, tracker = replay_events([e for ev in events for e in (ev, ev)])
    strip = {"wait_s", "duration_s"}  # the logical clock ticks per event, so durations double
    assert [(t, {k: v for k, v in d.items() if k not in strip}) for t, d in _comparable(twice)] == [
        (t, {k: v for k, v in d.items() if k not in strip}) for t, d in _comparable(once)
    ]
    assert not _leftovers(tracker)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(trace_names()), data=st.data())
def test_reordered_neighbours_never_raise_nor_leak(name: str, data: st.DataObject) -> None:
    """Out-of-order delivery (e.g. a Local ;2 event before its ;1): swap random adjacent pairs."""
    events = list(trace_events(name))
    if len(events) < 2:
        return
    swaps = data.draw(st.lists(st.integers(0, len(events) - 2), max_size=20))
    for i in swaps:
        events[i], events[i + 1] = events[i + 1], events[i]
    _, tracker = replay_events(events)
    assert not tracker.calls, "every channel of the trace hangs up, whatever the order"


_names = st.sampled_from(
    ["Newchannel", "Newstate", "Hangup", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "BlindTransfer",
     "AttendedTransfer", "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "QueueEntry", "QueueMember",
     "ConfbridgeJoin", "ConfbridgeLeave", "ConfbridgeList", "CoreShowChannel", "DTMFEnd", "Hold", "Unhold",
     "Shutdown", "FullyBooted", "VarSet", "UserEvent", "AgentCalled", "BridgeMerge", "LocalBridge", "Mystery"]
)  # fmt: skip
_keys = st.sampled_from(
    ["Channel", "Uniqueid", "Linkedid", "DestChannel", "DestUniqueid", "DestLinkedid", "CallerIDNum", "Cause",
     "Position", "Count", "BridgeUniqueid", "Queue", "Conference", "Priority", "Uptime", "DurationMs", "Digit",
     "Direction", "DialStatus", "Result", "TransfereeUniqueid", "TransfererUniqueid", "FromBridgeUniqueid",
     "ToBridgeUniqueid", "ActionID", "Wait", "HoldTime", "Status", "Paused"]
)  # fmt: skip
_values = st.one_of(st.sampled_from(["", "1", "-1", "x", "u1", "u2", "L", "Local/a@b-1;1", "Local/a@b-1;2",
                                     "<unknown>", "Received", "ANSWER", "99999999999999999999"]), st.text(max_size=8))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_names, st.lists(st.tuples(_keys, _values), max_size=8)), max_size=40))
def test_random_odd_events_never_raise(stream: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """Not only does feed() not raise (it has a safety net): no handler even needs the safety net."""
    tracker = CallTracker(clock=lambda: 0.0)
    with capture_logs() as logs:
        for name, headers in stream:
            ev = decode(AmiMessage((("Event", name), *headers)))
            assert isinstance(tracker.feed(ev), list)
        tracker.resync([decode(AmiMessage((("Event", n), *h))) for n, h in stream])
        tracker.snapshot()
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")], logs


def test_unknown_channels_and_late_events_are_survived() -> None:
    tracker = CallTracker(clock=lambda: 5.0)
    hangup = decode_headers("Hangup", {"Channel": "PJSIP/x-1", "Uniqueid": "u9", "Linkedid": "u9", "Cause": "16"})
    assert tracker.feed(hangup) == []
    late = decode_headers("Newchannel", {"Channel": "PJSIP/x-1", "Uniqueid": "u9", "Linkedid": "u9"})
    assert tracker.feed(late) == [] and not tracker.channels, "a hung-up channel is not resurrected"
    varset = decode_headers("VarSet", {"Channel": "PJSIP/y-1", "Uniqueid": "u8", "Variable": "A", "Value": "1"})
    assert tracker.feed(varset) == [] and not tracker.channels, "update-only events create nothing"
    assert tracker.feed(ami.GenericEvent(name="Whatever", headers=())) == []


def test_hotline_of_failure_is_contained() -> None:
    def broken(_: ami.ChannelSnapshot) -> str | None:
        raise RuntimeError("boom")

    tracker = CallTracker(hotline_of=broken, clock=lambda: 1.0)
    out = tracker.feed(decode_headers("Newchannel", {"Channel": "PJSIP/t-1", "Uniqueid": "c1", "Linkedid": "c1",
                                                          "CallerIDNum": "13800138000"}))  # fmt: skip
    assert [e.TYPE for e in out] == ["call.offered"] and out[0].hotline is None


def test_the_memory_of_ended_calls_stays_bounded() -> None:
    # Every ended call leaves its uniqueids and its call id behind (late events must not revive it); a
    # daemon that runs for months must forget the oldest, call ids included.
    tracker = CallTracker()
    bound = TOMBSTONES
    for i in range(bound + 500):
        uid = f"1700000000.{i}"
        snap = {"Channel": f"PJSIP/trunk-{i:08x}", "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": "13800000000"}
        tracker.feed(decode_headers("Newchannel", snap), now=float(i))
        ended = tracker.feed(decode_headers("Hangup", {**snap, "Cause": "16"}), now=float(i) + 0.5)
        assert [e.TYPE for e in ended][-1] == "call.ended"
    assert len(tracker.state.gone) <= bound
    assert not tracker.calls and not tracker.channels
    # the newest are still remembered: a late event of the last call does not revive it
    last = f"1700000000.{bound + 499}"
    late = {"Channel": "PJSIP/trunk-x", "Uniqueid": last, "Linkedid": last}
    assert tracker.feed(decode_headers("Newchannel", late), now=1e9) == []
