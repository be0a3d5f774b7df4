"""Two centres (issue 21) on the live recordings, without a PBX: the tracker and the binder against the AMI
sessions both PBXs gave their daemons when a hand-over crossed the trunk for real
(``tests/fixtures/asterisk-22-live/live_two_centres_hand_over_crosses_the_trunk_by_header_<12345|110>``,
recorded by tests/live/test_live_two_centres.py).

The 12345 session gives the hand-over as its PBX knew it (the engine's ``CB_*`` variables on the caller's
channel when ``CallbridgeTarget`` announced the transfer id); the 110 session gives the inbound call with
``CB_HANDOVER_IN`` read from the SIP header. :class:`CentresService` — the daemon's own wiring, header from
the tracker — binds the one to the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.ami.event_types.base import AmiEvent
from callbridge.ami.event_types.system import UserEvent
from callbridge.calls.tracker import CallTracker
from callbridge.centres.events import HandoverBound
from callbridge.centres.service import CentresService
from callbridge.dialplan import load_dialplan
from callbridge.domain import DomainEvent
from callbridge.engine.authz import hotline_of
from callbridge.engine.events import TransferRequested
from callbridge.settings import CentresSettings
from callbridge.testing.replay import events_from_raw, times_from_log

REPO = Path(__file__).resolve().parents[2]
LIVE = REPO / "tests" / "fixtures" / "asterisk-22-live"
STEM = "live_two_centres_hand_over_crosses_the_trunk_by_header"
PLANS = REPO / "dialplans" / "two-centres"


def _session(centre: str) -> Iterator[tuple[AmiEvent, float]]:
    events = list(events_from_raw((LIVE / f"{STEM}_{centre}.rx.raw").read_bytes()))
    times = times_from_log((LIVE / f"{STEM}_{centre}.log").read_text("utf-8"))
    assert len(times) == len(events), centre
    return zip(events, times, strict=True)


def _tracker(centre: str) -> CallTracker:
    plan = load_dialplan(PLANS / centre)
    return CallTracker(hotline_of=hotline_of(lambda: plan))


def requested_at_12345() -> TransferRequested:
    """The hand-over the 12345 daemon published, as the 12345 PBX's session holds it."""
    tracker = _tracker("12345")
    for ev, t in _session("12345"):
        tracker.feed(ev, now=t)
        if isinstance(ev, UserEvent) and ev.user_event == "CallbridgeTarget" and ev.snap is not None:
            fields = dict(ev.fields)
            channel = tracker.channel_by_name(ev.snap.channel)
            call = tracker.call_of_channel(ev.snap.channel)
            assert channel is not None and call is not None
            v = channel.variables
            assert v["CB_XFER_ID"] == fields["XferId"]
            return TransferRequested(ts=t, call_id=call.call_id, hotline=v["CB_FROM_HOTLINE"],
                                     transfer_id=fields["XferId"], from_hotline=v["CB_FROM_HOTLINE"],
                                     to_hotline=fields["Hotline"], caller_num=v["CB_CALLER_NUM"], agent=v["CB_AGENT"],
                                     category=v["CB_CATEGORY"], ticket=v["CB_TICKET"], summary=v.get("CB_SUMMARY", ""),
                                     mode="blind", source="command")  # fmt: skip
    raise AssertionError("no CallbridgeTarget in the 12345 session")


class Centre110:
    """The 110 daemon's tracker and link on the replayed 110 session."""

    def __init__(self) -> None:
        self.tracker = _tracker("110")
        self.out: list[DomainEvent] = []
        plan = load_dialplan(PLANS / "110")
        self.link = CentresService(CentresSettings(peer_site="c12345"), peer_site="c12345", plan=lambda: plan,
                                   tracker=self.tracker, publish=self.out.extend, bus=None)  # fmt: skip
        self.derived: list[DomainEvent] = []
        self._events = iter(list(_session("110")))

    def replay(self, until: str = "") -> None:
        """Feed the 110 session (up to the first event of type *until*, included; all of it if empty)."""
        for ev, t in self._events:
            derived = self.tracker.feed(ev, now=t)
            self.derived += derived
            self.link(derived)
            if until and until in (e.TYPE for e in derived):
                return

    def bound(self) -> list[HandoverBound]:
        return [e for e in self.out if isinstance(e, HandoverBound)]

    def inbound_call(self) -> str:
        [offered] = [e for e in self.derived if e.TYPE == "call.offered"]
        assert offered.hotline == "110" and offered.call_id
        return offered.call_id


def test_the_recorded_hand_over_is_the_one_the_110_pbx_read_from_the_header() -> None:
    requested = requested_at_12345()
    assert (requested.to_hotline, requested.agent, requested.ticket, requested.category) == (
        "110", "agent1001", "GD-2101", "police")  # fmt: skip
    rx = (LIVE / f"{STEM}_110.rx.raw").read_bytes()
    assert f"Variable: __CB_HANDOVER_IN\r\nValue: {requested.transfer_id}\r\n".encode() in rx


def test_the_recorded_110_inbound_call_binds_by_header() -> None:
    requested = requested_at_12345()
    c110 = Centre110()
    c110.link.take([requested])  # the hand-over data first (the bridge up)
    c110.replay()
    [bound] = c110.bound()
    assert (bound.match, bound.call_id, bound.transfer_id, bound.remote_call_id) == (
        "header", c110.inbound_call(), requested.transfer_id, requested.call_id)  # fmt: skip
    assert (bound.ticket, bound.agent, bound.category, bound.caller_num, bound.centre, bound.channel) == (
        "GD-2101", "agent1001", "police", requested.caller_num, "c12345", "PJSIP/carrier-00000000")  # fmt: skip


def test_the_recorded_call_waits_for_late_data_and_a_decoy_of_the_same_number_does_not_take_it() -> None:
    """The bridge down: the call queues before the hand-over data arrives. Another hand-over of the same
    caller number (another id) arriving first does not bind it — the header decides — the right one does."""
    requested = requested_at_12345()
    c110 = Centre110()
    c110.replay(until="call.queued")
    assert c110.bound() == []
    decoy = TransferRequested(ts=requested.ts, call_id="1790000000.9", hotline="12345", transfer_id="decoy0000001",
                              from_hotline="12345", to_hotline="110", caller_num=requested.caller_num,
                              agent="agent1009", category="police", ticket="GD-9999", mode="blind",
                              source="command")  # fmt: skip
    c110.link.take([decoy])
    assert c110.bound() == []
    c110.link.take([requested])
    [bound] = c110.bound()
    assert (bound.match, bound.transfer_id, bound.call_id) == ("header", requested.transfer_id, c110.inbound_call())
    c110.replay()
    assert len(c110.bound()) == 1


@pytest.mark.parametrize("centre", ["12345", "110"])
def test_both_sessions_end_with_their_calls_ended(centre: str) -> None:
    tracker = _tracker(centre)
    ended = []
    for ev, t in _session(centre):
        ended += [e for e in tracker.feed(ev, now=t) if e.TYPE == "call.ended"]
    assert len(ended) == 1 and not tracker.calls
