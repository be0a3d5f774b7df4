"""Decoders of the event kinds that make up the bulk of live traffic (channel, dial, bridge, queue caller).

:mod:`callbridge.ami.events` installs these over its keyword decoders: same objects (the tests decode every
recorded message both ways and compare), at about half the cost — positional builders instead of the
dataclass ``__init__`` (see :mod:`callbridge.fastinit`), and no helper call where a ``dict.get``
does.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from callbridge.ami.event_types import (
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AmiEvent,
    BridgeCreate,
    BridgeDestroy,
    BridgeEnter,
    BridgeLeave,
    BridgeSnapshot,
    ChannelEvent,
    ChannelSnapshot,
    DialBegin,
    DialEnd,
    DialState,
    DTMFBegin,
    DTMFEnd,
    Hangup,
    HangupRequest,
    NewCallerid,
    Newchannel,
    NewConnectedLine,
    Newstate,
    QueueCallerJoin,
    QueueCallerLeave,
    SoftHangupRequest,
    VarSet,
)
from callbridge.ami.fields import EMPTY_SNAPSHOT, bridge, opt_int, snapshot, timestamp, to_int
from callbridge.fastinit import positional_constructor

H = dict[str, str]
Snap = ChannelSnapshot | None


class HotDecoder(Protocol):
    def __call__(self, d: H, s: Snap = None, ds: Snap = None, /) -> AmiEvent: ...


def _channel_kind(cls: type[ChannelEvent]) -> HotDecoder:
    build = positional_constructor(cls)
    return lambda d, s=None, ds=None: build(timestamp(d), s or snapshot(d, "", True))


def hot_decoders() -> dict[str, HotDecoder]:
    """The hot decoders by event name. Each takes the header dict and, when the C framing loop built them,
    the message's snapshots (no prefix, ``Dest``); a snapshot that is ``None`` is read from the dict."""
    var_set, hangup, hangup_req, soft_req = (
        positional_constructor(VarSet),
        positional_constructor(Hangup),
        positional_constructor(HangupRequest),
        positional_constructor(SoftHangupRequest),
    )
    dial_begin, dial_state, dial_end = (
        positional_constructor(DialBegin),
        positional_constructor(DialState),
        positional_constructor(DialEnd),
    )
    b_create, b_destroy, b_enter, b_leave = (
        positional_constructor(BridgeCreate),
        positional_constructor(BridgeDestroy),
        positional_constructor(BridgeEnter),
        positional_constructor(BridgeLeave),
    )
    dtmf_begin, dtmf_end = positional_constructor(DTMFBegin), positional_constructor(DTMFEnd)
    q_join, q_leave = positional_constructor(QueueCallerJoin), positional_constructor(QueueCallerLeave)
    a_called, a_connect, a_complete = (
        positional_constructor(AgentCalled),
        positional_constructor(AgentConnect),
        positional_constructor(AgentComplete),
    )

    def dest(d: H) -> ChannelSnapshot:
        return snapshot(d, "Dest") or EMPTY_SNAPSHOT

    g = dict.get

    AgentHead = tuple[float | None, ChannelSnapshot, ChannelSnapshot | None, str, str, str]

    def agent_head(d: H, s: Snap, ds: Snap) -> AgentHead:
        """The fields every Agent* event starts with, in field order (see AgentEvent)."""
        queue, member, interface = g(d, "Queue", ""), g(d, "MemberName", ""), g(d, "Interface", "")
        return timestamp(d), s or snapshot(d, "", True), ds or snapshot(d, "Dest"), queue, member, interface

    # (d, s, ds): the header dict, then the snapshots the C loop built (None: read them from d).
    return {
        "Newchannel": _channel_kind(Newchannel),
        "Newstate": _channel_kind(Newstate),
        "NewCallerid": _channel_kind(NewCallerid),
        "NewConnectedLine": _channel_kind(NewConnectedLine),
        "VarSet": lambda d, s=None, ds=None: var_set(
            timestamp(d), s or snapshot(d, "", True), g(d, "Variable", ""), g(d, "Value", "")
        ),
        "Hangup": lambda d, s=None, ds=None: hangup(
            timestamp(d), s or snapshot(d, "", True), opt_int(g(d, "Cause")), g(d, "Cause-txt", ""),
            g(d, "TechCause", ""),
        ),
        "HangupRequest": lambda d, s=None, ds=None: hangup_req(
            timestamp(d), s or snapshot(d, "", True), opt_int(g(d, "Cause")), g(d, "TechCause", "")
        ),
        "SoftHangupRequest": lambda d, s=None, ds=None: soft_req(
            timestamp(d), s or snapshot(d, "", True), opt_int(g(d, "Cause"))
        ),
        "DialBegin": lambda d, s=None, ds=None: dial_begin(
            timestamp(d), s or snapshot(d), ds or dest(d), g(d, "DialString", "")
        ),
        "DialState": lambda d, s=None, ds=None: dial_state(
            timestamp(d), s or snapshot(d), ds or dest(d), g(d, "DialStatus", "")
        ),
        "DialEnd": lambda d, s=None, ds=None: dial_end(
            timestamp(d), s or snapshot(d), ds or dest(d), g(d, "DialStatus", ""), g(d, "Forward", "")
        ),
        "BridgeCreate": lambda d, s=None, ds=None: b_create(timestamp(d), bridge(d)),
        "BridgeDestroy": lambda d, s=None, ds=None: b_destroy(timestamp(d), bridge(d)),
        "BridgeEnter": lambda d, s=None, ds=None: b_enter(
            timestamp(d), s or snapshot(d, "", True), bridge(d), g(d, "SwapUniqueid", "")
        ),
        "BridgeLeave": lambda d, s=None, ds=None: b_leave(timestamp(d), s or snapshot(d, "", True), bridge(d)),
        "DTMFBegin": lambda d, s=None, ds=None: dtmf_begin(
            timestamp(d), s or snapshot(d, "", True), g(d, "Digit", ""), g(d, "Direction", "")
        ),
        "DTMFEnd": lambda d, s=None, ds=None: dtmf_end(
            timestamp(d), s or snapshot(d, "", True), g(d, "Digit", ""), g(d, "Direction", ""),
            to_int(g(d, "DurationMs")),
        ),
        "QueueCallerJoin": lambda d, s=None, ds=None: q_join(
            timestamp(d), s or snapshot(d, "", True), g(d, "Queue", ""), to_int(g(d, "Position")),
            to_int(g(d, "Count")),
        ),
        "QueueCallerLeave": lambda d, s=None, ds=None: q_leave(
            timestamp(d), s or snapshot(d, "", True), g(d, "Queue", ""), to_int(g(d, "Position")),
            to_int(g(d, "Count")),
        ),
        "AgentCalled": lambda d, s=None, ds=None: a_called(*agent_head(d, s, ds)),
        "AgentConnect": lambda d, s=None, ds=None: a_connect(
            *agent_head(d, s, ds), to_int(g(d, "HoldTime")), to_int(g(d, "RingTime"))
        ),
        "AgentComplete": lambda d, s=None, ds=None: a_complete(
            *agent_head(d, s, ds), to_int(g(d, "HoldTime")), to_int(g(d, "TalkTime")), g(d, "Reason", "")
        ),
    }  # fmt: skip


# --- the same events built by the C framing loop ----------------------------------------------------------
# Where each field of each hot event comes from, in the class's field order: the C loop builds these events
# while it reads the message (no dict look-ups, no Python call per event); the decoders above stay the
# fallback (no C loop, or a snapshot the C loop could not build) and the reference the tests compare with.
Source = tuple[str, str | None]
_TS: Source = ("ts", None)  # fields.timestamp
_SNAP: Source = ("snap", None)  # the complete snapshot without prefix (else the Python decoder decides)
_DEST: Source = ("dest", None)  # the complete Dest snapshot (else the Python decoder decides)
_BRIDGE: Source = ("bridge", None)  # fields.bridge


def _s(header: str) -> Source:
    return ("str", header)  # the value, "" when absent


def _i(header: str) -> Source:
    return ("int", header)  # fields.to_int


def _oi(header: str) -> Source:
    return ("opt_int", header)  # fields.opt_int


_AGENT = (_TS, _SNAP, _DEST, _s("Queue"), _s("MemberName"), _s("Interface"))
_QUEUE_CALLER = (_TS, _SNAP, _s("Queue"), _i("Position"), _i("Count"))
C_EVENTS: dict[str, tuple[type[AmiEvent], tuple[Source, ...]]] = {
    "Newchannel": (Newchannel, (_TS, _SNAP)),
    "Newstate": (Newstate, (_TS, _SNAP)),
    "NewCallerid": (NewCallerid, (_TS, _SNAP)),
    "NewConnectedLine": (NewConnectedLine, (_TS, _SNAP)),
    "VarSet": (VarSet, (_TS, _SNAP, _s("Variable"), _s("Value"))),
    "Hangup": (Hangup, (_TS, _SNAP, _oi("Cause"), _s("Cause-txt"), _s("TechCause"))),
    "HangupRequest": (HangupRequest, (_TS, _SNAP, _oi("Cause"), _s("TechCause"))),
    "SoftHangupRequest": (SoftHangupRequest, (_TS, _SNAP, _oi("Cause"))),
    "DialBegin": (DialBegin, (_TS, _SNAP, _DEST, _s("DialString"))),
    "DialState": (DialState, (_TS, _SNAP, _DEST, _s("DialStatus"))),
    "DialEnd": (DialEnd, (_TS, _SNAP, _DEST, _s("DialStatus"), _s("Forward"))),
    "BridgeCreate": (BridgeCreate, (_TS, _BRIDGE)),
    "BridgeDestroy": (BridgeDestroy, (_TS, _BRIDGE)),
    "BridgeEnter": (BridgeEnter, (_TS, _SNAP, _BRIDGE, _s("SwapUniqueid"))),
    "BridgeLeave": (BridgeLeave, (_TS, _SNAP, _BRIDGE)),
    "DTMFBegin": (DTMFBegin, (_TS, _SNAP, _s("Digit"), _s("Direction"))),
    "DTMFEnd": (DTMFEnd, (_TS, _SNAP, _s("Digit"), _s("Direction"), _i("DurationMs"))),
    "QueueCallerJoin": (QueueCallerJoin, _QUEUE_CALLER),
    "QueueCallerLeave": (QueueCallerLeave, _QUEUE_CALLER),
    "AgentCalled": (AgentCalled, _AGENT),
    "AgentConnect": (AgentConnect, (*_AGENT, _i("HoldTime"), _i("RingTime"))),
    "AgentComplete": (AgentComplete, (*_AGENT, _i("HoldTime"), _i("TalkTime"), _s("Reason"))),
}
BRIDGE_HEADERS = ("BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
                  "BridgeNumChannels")  # fmt: skip


def c_event_fields(cls: type[AmiEvent], sources: tuple[Source, ...]) -> tuple[tuple[str, str, str | None], ...]:
    """``(slot, source, header)`` for every field of ``cls``; refuses a table that misses or adds one."""
    names = [f.name for f in dataclasses.fields(cls)]
    if len(names) != len(sources):
        raise TypeError(f"C_EVENTS[{cls.__name__}] has {len(sources)} sources for the fields {names}")
    return tuple((name, source, header) for name, (source, header) in zip(names, sources, strict=True))


def configure_c_events() -> bool:
    """Hand :data:`C_EVENTS` to the C loop; False when it is not built (the decoders above do it all)."""
    try:
        from callbridge.ami import _fastframe
    except ImportError:  # pragma: no cover - depends on the build
        return False
    _fastframe.configure_bridge(BridgeSnapshot, BRIDGE_HEADERS)
    for name, (cls, sources) in C_EVENTS.items():
        _fastframe.configure_event(name, cls, c_event_fields(cls, sources))
    return True
