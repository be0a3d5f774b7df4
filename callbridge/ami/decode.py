"""AMI decoding: :func:`decode` turns one :class:`AmiMessage` into its typed event (:mod:`callbridge.ami.event_types`).

The decoders here are the reference: one per typed kind, each building the event with its class's own
constructor from the message's header dict. The C framing loop builds the bulk kinds itself while it reads
the bytes (:mod:`callbridge.ami.fast`, tested against these decoders); ``decode`` returns those as they are.
It never raises: a field that is missing or not a number becomes ``""`` / ``0`` / ``None``, and a frame that
still cannot be decoded becomes a :class:`GenericEvent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from callbridge.ami.event_types import (
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AgentRingNoAnswer,
    AmiEvent,
    AttendedTransfer,
    BlindTransfer,
    BridgeCreate,
    BridgeDestroy,
    BridgeEnter,
    BridgeInfoChannel,
    BridgeInfoComplete,
    BridgeLeave,
    BridgeListItem,
    BridgeMerge,
    ChannelEvent,
    ChannelSnapshot,
    ConfbridgeEnd,
    ConfbridgeJoin,
    ConfbridgeLeave,
    ConfbridgeList,
    ConfbridgeListRooms,
    ConfbridgeMute,
    ConfbridgeStart,
    ConfbridgeUnmute,
    CoreShowChannel,
    DialBegin,
    DialEnd,
    DialState,
    DTMFBegin,
    DTMFEnd,
    FullyBooted,
    GenericEvent,
    Hangup,
    HangupRequest,
    Hold,
    LocalBridge,
    MusicOnHoldStart,
    MusicOnHoldStop,
    NewCallerid,
    Newchannel,
    NewConnectedLine,
    Newstate,
    OriginateResponse,
    Pickup,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueEntry,
    QueueMember,
    QueueMemberAdded,
    QueueMemberEvent,
    QueueMemberPause,
    QueueMemberRemoved,
    QueueMemberStatus,
    QueueParams,
    Shutdown,
    SoftHangupRequest,
    Unhold,
    UserEvent,
    VarSet,
)
from callbridge.ami.fields import (
    EMPTY_SNAPSHOT,
    bridge,
    num,
    opt_int,
    snapshot,
    timestamp,
    to_int,
    yes,
)
from callbridge.ami.framing import AmiMessage, message_fields

H = dict[str, str]
# Headers every channel snapshot has; anything else in a UserEvent is user data.
_SNAPSHOT_HEADERS = frozenset(
    {"Event", "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
     "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority",
     "Uniqueid", "Linkedid", "UserEvent", "Timestamp", "SystemName"}
)  # fmt: skip
_num, _int, _opt_int, _yes, _ts, _psnap, _bridge = num, to_int, opt_int, yes, timestamp, snapshot, bridge
_EMPTY = EMPTY_SNAPSHOT


def _snap(d: H) -> ChannelSnapshot:
    return snapshot(d, "", True)


def _member(cls: type[QueueMemberEvent]) -> Callable[[H], AmiEvent]:
    def build(d: H) -> AmiEvent:
        g = d.get
        common = {
            "timestamp": _ts(d),
            "queue": g("Queue", ""),
            "member_name": g("MemberName", "") or g("Name", ""),
            "interface": g("Interface", "") or g("Location", ""),
            "state_interface": g("StateInterface", ""),
            "status": _int(g("Status")),
            "paused": _yes(g("Paused")),
            "paused_reason": g("PausedReason", ""),
            "in_call": _yes(g("InCall")),
            "calls_taken": _int(g("CallsTaken")),
            "penalty": _int(g("Penalty")),
        }
        if cls is QueueMember:
            return QueueMember(action_id=g("ActionID", ""), **common)  # type: ignore[arg-type]
        return cls(**common)  # type: ignore[arg-type]

    return build


def _queue_caller(d: H) -> dict[str, object]:
    """The fields of a QueueCallerJoin / QueueCallerLeave (see QueueCallerEvent)."""
    return {"timestamp": _ts(d), "snap": _snap(d), "queue": d.get("Queue", ""), "position": _int(d.get("Position")),
            "count": _int(d.get("Count"))}  # fmt: skip


def _agent(d: H) -> dict[str, object]:
    g = d.get
    return {
        "timestamp": _ts(d),
        "snap": _snap(d),
        "dest": _psnap(d, "Dest"),
        "queue": g("Queue", ""),
        "member_name": g("MemberName", ""),
        "interface": g("Interface", ""),
    }


def _simple(cls: type[ChannelEvent]) -> Callable[[H], AmiEvent]:
    return lambda d: cls(timestamp=_ts(d), snap=_snap(d))


DECODERS: dict[str, Callable[[H], AmiEvent]] = {
    "Newchannel": _simple(Newchannel),
    "Newstate": _simple(Newstate),
    "NewCallerid": _simple(NewCallerid),
    "NewConnectedLine": _simple(NewConnectedLine),
    "Unhold": _simple(Unhold),
    "MusicOnHoldStop": _simple(MusicOnHoldStop),
    "VarSet": lambda d: VarSet(
        timestamp=_ts(d), snap=_snap(d), variable=d.get("Variable", ""), value=d.get("Value", "")
    ),
    "Hangup": lambda d: Hangup(
        timestamp=_ts(d),
        snap=_snap(d),
        cause=_opt_int(d.get("Cause")),
        cause_txt=d.get("Cause-txt", ""),
        tech_cause=d.get("TechCause", ""),
    ),
    "HangupRequest": lambda d: HangupRequest(timestamp=_ts(d), snap=_snap(d), cause=_opt_int(d.get("Cause")),
                                             tech_cause=d.get("TechCause", "")),
    "SoftHangupRequest": lambda d: SoftHangupRequest(timestamp=_ts(d), snap=_snap(d), cause=_opt_int(d.get("Cause"))),
    "DialBegin": lambda d: DialBegin(
        timestamp=_ts(d), snap=_psnap(d, ""), dest=_psnap(d, "Dest") or _EMPTY, dial_string=d.get("DialString", "")
    ),
    "DialState": lambda d: DialState(
        timestamp=_ts(d), snap=_psnap(d, ""), dest=_psnap(d, "Dest") or _EMPTY, dial_status=d.get("DialStatus", "")
    ),
    "DialEnd": lambda d: DialEnd(
        timestamp=_ts(d),
        snap=_psnap(d, ""),
        dest=_psnap(d, "Dest") or _EMPTY,
        dial_status=d.get("DialStatus", ""),
        forward=d.get("Forward", ""),
    ),
    "BridgeCreate": lambda d: BridgeCreate(timestamp=_ts(d), bridge=_bridge(d)),
    "BridgeDestroy": lambda d: BridgeDestroy(timestamp=_ts(d), bridge=_bridge(d)),
    "BridgeEnter": lambda d: BridgeEnter(timestamp=_ts(d), snap=_snap(d), bridge=_bridge(d),
                                         swap_uniqueid=d.get("SwapUniqueid", "")),
    "BridgeLeave": lambda d: BridgeLeave(timestamp=_ts(d), snap=_snap(d), bridge=_bridge(d)),
    "BridgeMerge": lambda d: BridgeMerge(timestamp=_ts(d), to_bridge=_bridge(d, "To"), from_bridge=_bridge(d, "From")),
    "LocalBridge": lambda d: LocalBridge(
        timestamp=_ts(d),
        local_one=_psnap(d, "LocalOne") or _EMPTY,
        local_two=_psnap(d, "LocalTwo") or _EMPTY,
        context=d.get("Context", ""),
        exten=d.get("Exten", ""),
        local_optimization=_yes(d.get("LocalOptimization")),
    ),
    "Pickup": lambda d: Pickup(timestamp=_ts(d), snap=_snap(d), target=_psnap(d, "Target")),
    "BlindTransfer": lambda d: BlindTransfer(
        timestamp=_ts(d),
        result=d.get("Result", ""),
        transferer=_psnap(d, "Transferer"),
        transferee=_psnap(d, "Transferee"),
        bridge=_bridge(d),
        is_external=_yes(d.get("IsExternal")),
        context=d.get("Context", ""),
        extension=d.get("Extension", ""),
    ),
    "AttendedTransfer": lambda d: AttendedTransfer(
        timestamp=_ts(d),
        result=d.get("Result", ""),
        orig_transferer=_psnap(d, "OrigTransferer"),
        second_transferer=_psnap(d, "SecondTransferer"),
        transferee=_psnap(d, "Transferee"),
        target=_psnap(d, "TransferTarget"),
        orig_bridge_id=d.get("OrigBridgeUniqueid", ""),
        second_bridge_id=d.get("SecondBridgeUniqueid", ""),
        dest_type=d.get("DestType", ""),
        dest_bridge_id=d.get("DestBridgeUniqueid", ""),
        dest_app=d.get("DestApp", ""),
        is_external=_yes(d.get("IsExternal")),
    ),
    "Hold": lambda d: Hold(timestamp=_ts(d), snap=_snap(d), music_class=d.get("MusicClass", "")),
    "MusicOnHoldStart": lambda d: MusicOnHoldStart(timestamp=_ts(d), snap=_snap(d), music_class=d.get("Class", "")),
    "DTMFBegin": lambda d: DTMFBegin(timestamp=_ts(d), snap=_snap(d), digit=d.get("Digit", ""),
                                     direction=d.get("Direction", "")),
    "DTMFEnd": lambda d: DTMFEnd(
        timestamp=_ts(d),
        snap=_snap(d),
        digit=d.get("Digit", ""),
        direction=d.get("Direction", ""),
        duration_ms=_int(d.get("DurationMs")),
    ),
    "QueueCallerJoin": lambda d: QueueCallerJoin(**_queue_caller(d)),  # type: ignore[arg-type]
    "QueueCallerLeave": lambda d: QueueCallerLeave(**_queue_caller(d)),  # type: ignore[arg-type]
    "QueueCallerAbandon": lambda d: QueueCallerAbandon(
        timestamp=_ts(d),
        snap=_snap(d),
        queue=d.get("Queue", ""),
        position=_int(d.get("Position")),
        original_position=_int(d.get("OriginalPosition")),
        hold_time=_int(d.get("HoldTime")),
    ),
    "AgentCalled": lambda d: AgentCalled(**_agent(d)),  # type: ignore[arg-type]
    "AgentConnect": lambda d: AgentConnect(
        **_agent(d),  # type: ignore[arg-type]
        hold_time=_int(d.get("HoldTime")),
        ring_time=_int(d.get("RingTime")),
    ),
    "AgentComplete": lambda d: AgentComplete(
        **_agent(d),  # type: ignore[arg-type]
        hold_time=_int(d.get("HoldTime")),
        talk_time=_int(d.get("TalkTime")),
        reason=d.get("Reason", ""),
    ),
    "AgentRingNoAnswer": lambda d: AgentRingNoAnswer(**_agent(d), ring_time=_int(d.get("RingTime"))),  # type: ignore[arg-type]
    "QueueMemberAdded": _member(QueueMemberAdded),
    "QueueMemberRemoved": _member(QueueMemberRemoved),
    "QueueMemberPause": _member(QueueMemberPause),
    "QueueMemberStatus": _member(QueueMemberStatus),
    "QueueMember": _member(QueueMember),
    "QueueEntry": lambda d: QueueEntry(
        timestamp=_ts(d),
        queue=d.get("Queue", ""),
        position=_int(d.get("Position")),
        channel=d.get("Channel", ""),
        uniqueid=d.get("Uniqueid", ""),
        caller_num=_num(d.get("CallerIDNum", "")),
        caller_name=_num(d.get("CallerIDName", "")),
        connected_num=_num(d.get("ConnectedLineNum", "")),
        connected_name=_num(d.get("ConnectedLineName", "")),
        wait=_int(d.get("Wait")),
        priority=_int(d.get("Priority")),
        action_id=d.get("ActionID", ""),
    ),
    "QueueParams": lambda d: QueueParams(
        timestamp=_ts(d),
        queue=d.get("Queue", ""),
        max=_int(d.get("Max")),
        strategy=d.get("Strategy", ""),
        calls=_int(d.get("Calls")),
        holdtime=_int(d.get("Holdtime")),
        talktime=_int(d.get("TalkTime")),
        completed=_int(d.get("Completed")),
        abandoned=_int(d.get("Abandoned")),
        action_id=d.get("ActionID", ""),
    ),
    "ConfbridgeStart": lambda d: ConfbridgeStart(timestamp=_ts(d), conference=d.get("Conference", ""),
                                                 bridge=_bridge(d)),
    "ConfbridgeEnd": lambda d: ConfbridgeEnd(timestamp=_ts(d), conference=d.get("Conference", ""), bridge=_bridge(d)),
    "ConfbridgeJoin": lambda d: ConfbridgeJoin(
        timestamp=_ts(d),
        snap=_snap(d),
        conference=d.get("Conference", ""),
        bridge=_bridge(d),
        admin=_yes(d.get("Admin")),
        muted=_yes(d.get("Muted")),
    ),
    "ConfbridgeLeave": lambda d: ConfbridgeLeave(
        timestamp=_ts(d),
        snap=_snap(d),
        conference=d.get("Conference", ""),
        bridge=_bridge(d),
        admin=_yes(d.get("Admin")),
    ),
    "ConfbridgeMute": lambda d: ConfbridgeMute(timestamp=_ts(d), snap=_snap(d), conference=d.get("Conference", "")),
    "ConfbridgeUnmute": lambda d: ConfbridgeUnmute(timestamp=_ts(d), snap=_snap(d), conference=d.get("Conference", "")),
    "ConfbridgeList": lambda d: ConfbridgeList(
        timestamp=_ts(d),
        snap=_snap(d),
        conference=d.get("Conference", ""),
        admin=_yes(d.get("Admin")),
        muted=_yes(d.get("Muted")),
        talking=_yes(d.get("Talking")),
        waiting=_yes(d.get("Waiting")),
        answered_time=_int(d.get("AnsweredTime")),
        action_id=d.get("ActionID", ""),
    ),
    "ConfbridgeListRooms": lambda d: ConfbridgeListRooms(
        timestamp=_ts(d),
        conference=d.get("Conference", ""),
        parties=_int(d.get("Parties")),
        locked=_yes(d.get("Locked")),
        muted=_yes(d.get("Muted")),
        action_id=d.get("ActionID", ""),
    ),
    "CoreShowChannel": lambda d: CoreShowChannel(
        timestamp=_ts(d),
        snap=_snap(d),
        bridge_id=d.get("BridgeId", ""),
        application=d.get("Application", ""),
        application_data=d.get("ApplicationData", ""),
        duration=d.get("Duration", ""),
        action_id=d.get("ActionID", ""),
    ),
    "BridgeListItem": lambda d: BridgeListItem(timestamp=_ts(d), bridge=_bridge(d), action_id=d.get("ActionID", "")),
    "BridgeInfoChannel": lambda d: BridgeInfoChannel(
        timestamp=_ts(d), snap=_snap(d), bridge_id=d.get("BridgeUniqueid", ""), action_id=d.get("ActionID", "")
    ),
    "BridgeInfoComplete": lambda d: BridgeInfoComplete(timestamp=_ts(d), bridge=_bridge(d),
                                                       action_id=d.get("ActionID", "")),
    "OriginateResponse": lambda d: OriginateResponse(
        timestamp=_ts(d),
        action_id=d.get("ActionID", ""),
        response=d.get("Response", ""),
        channel=d.get("Channel", ""),
        uniqueid=d.get("Uniqueid", ""),
        reason=_int(d.get("Reason")),
        context=d.get("Context", ""),
        exten=d.get("Exten", ""),
        caller_num=_num(d.get("CallerIDNum", "")),
        caller_name=_num(d.get("CallerIDName", "")),
        application=d.get("Application", ""),
        data=d.get("Data", ""),
    ),
    "UserEvent": lambda d: UserEvent(
        timestamp=_ts(d),
        user_event=d.get("UserEvent", ""),
        snap=_psnap(d, ""),
        fields=tuple((k, v) for k, v in d.items() if k not in _SNAPSHOT_HEADERS),
    ),
    "FullyBooted": lambda d: FullyBooted(
        timestamp=_ts(d),
        status=d.get("Status", ""),
        uptime=_opt_int(d.get("Uptime")),
        last_reload=_opt_int(d.get("LastReload")),
    ),
    "Shutdown": lambda d: Shutdown(timestamp=_ts(d), shutdown=d.get("Shutdown", ""), restart=_yes(d.get("Restart"))),
}


def decode(msg: AmiMessage) -> AmiEvent:
    """One AMI event message → its typed event (or :class:`GenericEvent`). Never raises."""
    event = msg.typed_event  # the C framing loop built it (the kinds of callbridge.ami.fast.C_EVENTS)
    if event is not None:
        return event  # type: ignore[no-any-return]
    name = msg.name
    build = DECODERS.get(name)
    if build is None:
        return GenericEvent(name=name, headers=msg.headers)
    try:
        return build(message_fields(msg))
    except Exception:  # a decoder bug or a truly odd frame must never stop the event stream
        return GenericEvent(name=name, headers=msg.headers)


def kinds_read(untyped: Iterable[str]) -> frozenset[str]:
    """The event names a consumer reads: every typed kind, and of the kinds without a decoder (each would become
    a :class:`GenericEvent`) those in ``untyped``. The client leaves the others out before decoding them."""
    return frozenset(DECODERS).union(untyped)


def decode_headers(name: str, headers: dict[str, str]) -> AmiEvent:
    """Decode from a header mapping (JSON traces, tests); the ``Event`` header is set to ``name``."""
    pairs = tuple((str(k), str(v)) for k, v in headers.items() if k != "Event")
    return decode(AmiMessage((("Event", name), *pairs)))
