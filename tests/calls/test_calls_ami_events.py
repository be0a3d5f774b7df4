"""Typed AMI event decoding on the real traces and on odd frames."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode, decode_headers
from callbridge.ami.framing import AmiFramer, AmiMessage
from tests.calls.traces import full_name, trace_bytes, trace_events, trace_names

TYPED_IN_TRACES = {
    "Newchannel", "Newstate", "NewCallerid", "NewConnectedLine", "VarSet", "Hangup", "HangupRequest",
    "SoftHangupRequest", "DialBegin", "DialState", "DialEnd", "BridgeCreate", "BridgeEnter", "BridgeLeave",
    "BridgeDestroy", "BridgeMerge", "LocalBridge", "BlindTransfer", "AttendedTransfer", "Hold", "Unhold",
    "MusicOnHoldStart", "MusicOnHoldStop", "DTMFBegin", "DTMFEnd", "QueueCallerJoin", "QueueCallerLeave",
    "QueueCallerAbandon", "AgentCalled", "AgentConnect", "AgentComplete", "QueueMemberAdded", "QueueMemberRemoved",
    "QueueMemberStatus", "QueueEntry", "QueueMember", "QueueParams", "ConfbridgeStart", "ConfbridgeJoin",
    "ConfbridgeLeave", "ConfbridgeEnd", "ConfbridgeList", "ConfbridgeListRooms", "ConfbridgeMute",
    "CoreShowChannel", "BridgeListItem", "BridgeInfoChannel", "BridgeInfoComplete", "OriginateResponse",
    "FullyBooted", "Shutdown",
}  # fmt: skip


def _all_events() -> list[ami.AmiEvent]:
    return [e for n in trace_names() for e in trace_events(n)]


def test_every_kind_callbridge_uses_is_typed_and_the_rest_generic() -> None:
    kinds = Counter((type(e).__name__, e.event_name) for e in _all_events())
    typed = {name for (cls, name) in kinds if cls != "GenericEvent"}
    assert typed == TYPED_IN_TRACES
    generic = {name for (cls, name) in kinds if cls == "GenericEvent"}
    assert {"Newexten", "DeviceStateChange", "CoreShowChannelsComplete"} <= generic
    assert not generic & TYPED_IN_TRACES
    for ev in _all_events():
        assert dataclasses.is_dataclass(ev) and not hasattr(ev, "__dict__"), "frozen slotted dataclasses"


def test_snapshots_and_prefixed_snapshots() -> None:
    events = trace_events(full_name("04"))
    blind = next(e for e in events if isinstance(e, ami.BlindTransfer))
    assert blind.transferer is not None and blind.transferer.channel.startswith("PJSIP/agent1001-")
    assert blind.transferee is not None and blind.transferee.caller_num == "13800138000"
    assert (blind.context, blind.extension, blind.result, blind.is_external) == ("internal", "12345", "Success", True)
    dial = next(e for e in events if isinstance(e, ami.DialBegin) and e.snap is not None)
    assert dial.dest.channel.startswith("PJSIP/agent1001-") and dial.dest.linkedid == "lab-caller"
    originate_dial = next(e for e in events if isinstance(e, ami.DialBegin))
    assert originate_dial.snap is None, "Originate's DialBegin has only Dest* fields"
    new = next(e for e in events if isinstance(e, ami.Newchannel))
    assert new.snap.caller_num == "" and new.snap.connected_num == "", "<unknown> becomes empty"
    assert new.snap.priority == "1" and new.snap.state_desc == "Down" and new.snap.channel_state == "0"
    hangup = next(e for e in events if isinstance(e, ami.Hangup))
    assert hangup.cause == 16 and hangup.cause_txt == "Normal Clearing"


def test_attended_transfer_and_list_items() -> None:
    att = next(e for e in trace_events(full_name("06")) if isinstance(e, ami.AttendedTransfer))
    assert att.target is not None and att.target.channel.startswith("Local/1002@internal-")
    assert att.orig_transferer == att.second_transferer or (
        att.orig_transferer is not None and att.second_transferer is not None
        and att.orig_transferer.channel == att.second_transferer.channel
    )  # fmt: skip
    assert att.dest_type == "Bridge" and att.dest_bridge_id
    entries = [e for e in trace_events(full_name("09")) if isinstance(e, ami.QueueEntry)]
    assert [(e.position, e.priority) for e in entries[:2]] == [(1, 10), (2, 0)]
    abandon = next(e for e in trace_events(full_name("21")) if isinstance(e, ami.QueueCallerAbandon))
    assert (abandon.hold_time, abandon.position, abandon.original_position) == (6, 1, 1)
    shutdown = next(e for e in trace_events(full_name("20")) if isinstance(e, ami.Shutdown))
    assert shutdown.restart and shutdown.shutdown == "Cleanly"
    dtmf = next(e for e in trace_events(full_name("18")) if isinstance(e, ami.DTMFEnd))
    assert (dtmf.digit, dtmf.direction, dtmf.duration_ms) == ("*", "Received", 120)


def test_decode_never_raises_and_keeps_unknown_events_generic() -> None:
    assert isinstance(decode(AmiMessage(())), ami.GenericEvent)
    odd = decode(AmiMessage((("Event", "Hangup"), ("Cause", "not-a-number"), ("Channel", "x"))))
    assert isinstance(odd, ami.Hangup) and odd.cause is None and odd.snap.uniqueid == ""
    mystery = decode(AmiMessage((("Event", "Mystery"), ("A", "1"))))
    assert isinstance(mystery, ami.GenericEvent) and mystery.get("A") == "1" and mystery.event_name == "Mystery"
    stamped = decode_headers("Newstate", {"Timestamp": "1700000000.5", "Uniqueid": "u"})
    assert stamped.timestamp == 1700000000.5
    user = decode_headers("UserEvent", {"UserEvent": "CbXfer", "Channel": "PJSIP/a-1", "Uniqueid": "u",
                                            "XferId": "x1"})  # fmt: skip
    assert isinstance(user, ami.UserEvent) and user.fields == (("XferId", "x1"),) and user.snap is not None


@pytest.mark.parametrize("channel, endpoint", [
    ("PJSIP/agent1001-00000004", "agent1001"), ("PJSIP/hotline-12345-0000000a", "hotline-12345"),
    ("Local/1002@internal-00000007;1", "1002@internal"), ("CBAnn/3way-0000000d;1", "3way"),
    ("PJSIP/anonymous-00000000", "anonymous"), ("weird", "weird"),
])  # fmt: skip
def test_endpoint_of(channel: str, endpoint: str) -> None:
    assert ami.endpoint_of(channel) == endpoint


def test_decode_matches_framing_of_the_whole_trace() -> None:
    frames = AmiFramer().feed(trace_bytes(full_name("09")))
    events = [f for f in frames if isinstance(f, AmiMessage) and f.kind == "event"]
    assert len(events) == len(trace_events(full_name("09"))) == 338


def test_events_are_frozen_and_keyword_only() -> None:
    make: Any = ami.VarSet  # the checks below are about runtime behaviour, not typing
    snap = decode_headers("Newchannel", {"Uniqueid": "u1"})
    assert isinstance(snap, ami.Newchannel)
    ev = make(snap=snap.snap, variable="CB_XFER_ID", value="x1")
    assert ev == ami.VarSet(snap=snap.snap, variable="CB_XFER_ID", value="x1") and hash(ev)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.value = "x2"
    with pytest.raises(TypeError):
        make(snap=snap.snap, variable="CB_XFER_ID")
    with pytest.raises(TypeError):
        make(snap.snap, "CB_XFER_ID", "x1")
