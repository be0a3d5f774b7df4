"""Resync after callbridge's own restart: calls its records know are taken over, not offered again; known calls
the PBX no longer lists ended while nobody watched; a call without a record takes CB_HOTLINE from the PBX."""

from __future__ import annotations

from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode
from callbridge.ami.framing import AmiMessage
from callbridge.calls import events as ce
from callbridge.calls.model import CallState, KnownCall
from callbridge.calls.resync import ENDED_UNOBSERVED
from callbridge.calls.tracker import CallTracker
from tests.calls.traces import full_name, trace_events


def _listing() -> list[ami.AmiEvent]:
    """CoreShowChannels of the recorded trace 04 (caller ↔ 12345 trunk), call id ``lab-caller``."""
    return [e for e in trace_events(full_name("04")) if getattr(e, "action_id", None) == "lab-5"]


def _no_hotline(_snap: ami.ChannelSnapshot) -> str | None:
    return None  # as for a caller redirected into cb-to-110 at s: its DID no longer names the hotline


def test_a_known_call_is_adopted_as_it_was_and_not_offered_again() -> None:
    tracker = CallTracker(hotline_of=_no_hotline, clock=lambda: 500.0)
    tracker.known["lab-caller"] = KnownCall("lab-caller", "12345", "13800138000", offered_ts=100.0,
                                            answered_ts=110.0, agent="agent1001", last_seen=400.0)  # fmt: skip
    out = tracker.resync(_listing())
    assert out == []  # no second call.offered, nothing ended
    call = tracker.calls["lab-caller"]
    assert (call.hotline, call.created, call.answered, call.agent) == ("12345", 100.0, 110.0, "agent1001")
    assert call.state == CallState.ANSWERED and call.offered and len(call.channels) == 3
    assert tracker.known == {}  # used once: a later reconnect resyncs as always
    ended = tracker.resync([], now=600.0)
    assert [(e.TYPE, e.hotline, e.data()["answered"], e.data()["reason"]) for e in ended] == [
        ("call.ended", "12345", True, "vanished")]  # fmt: skip


def test_known_calls_the_pbx_no_longer_has_ended_while_unobserved() -> None:
    tracker = CallTracker(hotline_of=_no_hotline, clock=lambda: 500.0)
    tracker.known["gone"] = KnownCall("gone", "110", "13700000001", offered_ts=100.0, last_seen=160.0)
    tracker.known["lab-caller"] = KnownCall("lab-caller", "12345", "13800138000", offered_ts=90.0)
    out = tracker.resync(_listing())
    assert [(e.TYPE, e.call_id) for e in out] == [("call.ended", "gone")]
    ended = out[0]
    assert isinstance(ended, ce.CallEnded) and ended.reason == ENDED_UNOBSERVED
    assert (ended.ts, ended.duration_s, ended.hotline, ended.answered, ended.caller_num) == (
        160.0, 60.0, "110", False, "13700000001")  # fmt: skip
    assert "gone" not in tracker.calls and tracker.resync(_listing()) == []  # ended once


def test_a_call_without_a_record_takes_cb_hotline_from_its_first_channel() -> None:
    listing = _listing()
    first = next(e for e in listing if isinstance(e, ami.CoreShowChannel) and e.snap.uniqueid == e.snap.linkedid)
    varset = decode(AmiMessage((("Event", "VarSet"), ("Channel", first.snap.channel),
                                    ("Uniqueid", first.snap.uniqueid), ("Linkedid", first.snap.linkedid),
                                    ("Variable", "CB_HOTLINE"), ("Value", "12345"))))  # fmt: skip
    tracker = CallTracker(hotline_of=_no_hotline, clock=lambda: 500.0)
    out = tracker.resync([*listing, varset])
    assert [(e.TYPE, e.hotline) for e in out] == [("call.offered", "12345")]
    assert tracker.channels[first.snap.uniqueid].variables["CB_HOTLINE"] == "12345"
    # a value that is no hotline number is not taken (it would become a topic level)
    bad = decode(AmiMessage((("Event", "VarSet"), ("Channel", first.snap.channel),
                                 ("Uniqueid", first.snap.uniqueid), ("Linkedid", first.snap.linkedid),
                                 ("Variable", "CB_HOTLINE"), ("Value", "12/#"))))  # fmt: skip
    fresh = CallTracker(hotline_of=_no_hotline, clock=lambda: 500.0)
    assert [(e.TYPE, e.hotline) for e in fresh.resync([*listing, bad])] == [("call.offered", None)]


def test_a_hotline_variable_of_a_channel_already_gone_makes_no_call() -> None:
    listing = _listing()
    first = next(e for e in listing if isinstance(e, ami.CoreShowChannel) and e.snap.uniqueid == e.snap.linkedid)
    varset = decode(AmiMessage((("Event", "VarSet"), ("Channel", first.snap.channel),
                                    ("Uniqueid", first.snap.uniqueid), ("Linkedid", first.snap.linkedid),
                                    ("Variable", "CB_HOTLINE"), ("Value", "12345"))))  # fmt: skip
    tracker = CallTracker(hotline_of=_no_hotline, clock=lambda: 500.0)
    tracker.resync(listing)
    assert [e.TYPE for e in tracker.resync([], now=510.0)] == ["call.ended"]  # its channels are remembered as gone
    assert tracker.resync([*listing, varset], now=520.0) == []  # a stale listing: nothing comes back
    assert tracker.calls == {}  # and no call without channels is left behind (it would never end)
