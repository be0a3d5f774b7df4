"""Resync: the list events of a (re)connect rebuild the tracker's picture."""

from __future__ import annotations

from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode_headers
from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.calls.tracker import CallTracker
from tests.calls.traces import full_name, trace_events


def _list(name: str, action_id: str) -> list[ami.AmiEvent]:
    return [e for e in trace_events(full_name(name)) if getattr(e, "action_id", None) == action_id]


def test_resync_adopts_a_call_in_progress_and_ends_it_when_it_vanished() -> None:
    tracker = CallTracker(clock=lambda: 100.0)
    listing = _list("04", "lab-5")  # CoreShowChannels while caller ↔ 12345 trunk
    assert {type(e) for e in listing} == {ami.CoreShowChannel} and len(listing) == 3
    out = tracker.resync(listing)
    assert [(e.TYPE, e.call_id) for e in out] == [("call.offered", "lab-caller")]
    offered = out[0]
    assert isinstance(offered, ce.CallOffered) and offered.caller_num == "13800138000"
    call = tracker.calls["lab-caller"]
    assert len(call.channels) == 3
    assert [p.name for p in tracker.parties("lab-caller")] == ["Local/caller@sim-00000004;1",
                                                              "PJSIP/hotline-12345-00000001"]  # fmt: skip
    again = tracker.resync(listing)
    assert again == [], "the same picture twice announces nothing"
    gone = tracker.resync([], now=130.0)
    assert [(e.TYPE, e.data()["reason"]) for e in gone] == [("call.ended", "vanished")]
    ended = gone[0]
    assert isinstance(ended, ce.CallEnded) and ended.duration_s == 30.0
    assert not tracker.calls and not tracker.channels and not tracker.bridges


def test_resync_marks_bridged_calls_answered() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    listing = _list("17", "lab-6")  # after the cancelled atxfer: agent back with the caller
    bridged = [e for e in listing if isinstance(e, ami.CoreShowChannel) and e.bridge_id]
    assert bridged, "the listing shows bridged channels"
    tracker.resync(listing)
    call = tracker.calls["lab-caller"]
    assert call.state == CallState.ANSWERED
    assert tracker.bridge_peers("Local/caller@sim-00000005;1")


def test_resync_of_queue_status_takes_queue_prio_and_drops_stale_callers() -> None:
    tracker = CallTracker(clock=lambda: 50.0)
    status = [e for e in trace_events(full_name("09")) if isinstance(e, ami.QueueParams | ami.QueueEntry)][:4]
    assert [type(e).__name__ for e in status] == ["QueueParams", "QueueParams", "QueueEntry", "QueueEntry"]
    tracker.resync(status[1:])
    waiting = tracker.queues["support"].ordered_callers()
    assert [(c.uniqueid, c.position, c.priority) for c in waiting] == [("lab-qB", 1, 10), ("lab-qA", 2, 0)]
    assert waiting[1].joined == 49.0, "join time = now - Wait"
    tracker.resync([status[0]])  # QueueStatus answered: support has nobody waiting now
    assert tracker.queues["support"].callers == {}


def test_resync_of_confbridge_list_builds_rooms_without_the_announcer() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    listing = [e for e in trace_events(full_name("08")) if isinstance(e, ami.ConfbridgeList)]
    shows = [e for e in trace_events(full_name("08")) if isinstance(e, ami.CoreShowChannel)]
    last_show = [e for e in shows if e.action_id == shows[-1].action_id]
    assert len(listing) == 3
    tracker.resync([*last_show, *listing])
    room = tracker.conferences["3way"]
    assert sorted(p.num for p in room.parties.values()) == ["1001", "13800138000", "13800138000"]
    assert not any(p.channel.startswith("CBAnn/") for p in room.parties.values())
    tracker.resync([])
    assert not tracker.conferences and not tracker.calls


def test_resync_after_a_missed_hangup_ends_only_the_vanished_call() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    new = decode_headers
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-1", "Uniqueid": "a", "Linkedid": "a", "CallerIDNum": "1"}))
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-2", "Uniqueid": "b", "Linkedid": "b", "CallerIDNum": "2"}))
    still = new("CoreShowChannel", {"Channel": "PJSIP/t-2", "Uniqueid": "b", "Linkedid": "b", "CallerIDNum": "2"})
    out = tracker.resync([still])
    assert [(e.TYPE, e.call_id) for e in out] == [("call.ended", "a")]
    assert list(tracker.calls) == ["b"]


def test_live_listing_drops_missed_channels_but_not_ones_born_during_the_listing() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    new = decode_headers
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-1", "Uniqueid": "a", "Linkedid": "a", "CallerIDNum": "1"}))
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-2", "Uniqueid": "b", "Linkedid": "b", "CallerIDNum": "2"}))
    tracker.feed(new("CoreShowChannel", {"ActionID": "l1", "Channel": "PJSIP/t-2", "Uniqueid": "b", "Linkedid": "b",
                                         "CallerIDNum": "2"}))  # fmt: skip
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-3", "Uniqueid": "c", "Linkedid": "c", "CallerIDNum": "3"}))
    out = tracker.feed(new("CoreShowChannelsComplete", {"ActionID": "l1", "EventList": "Complete", "ListItems": "1"}))
    assert [(e.TYPE, e.call_id, e.data()["reason"]) for e in out] == [("call.ended", "a", "vanished")]
    assert sorted(tracker.calls) == ["b", "c"]


def test_live_listing_seen_only_in_part_is_not_trusted() -> None:
    tracker = CallTracker(clock=lambda: 0.0)
    new = decode_headers
    tracker.feed(new("Newchannel", {"Channel": "PJSIP/t-1", "Uniqueid": "a", "Linkedid": "a", "CallerIDNum": "1"}))
    out = tracker.feed(new("CoreShowChannelsComplete", {"ActionID": "l2", "ListItems": "2"}))
    assert out == [] and list(tracker.calls) == ["a"], "attached after the items: the listing is incomplete"
