"""The fast path of AMI ingest, in one place: the C loop (``_fastframe.c``, its stub), what it builds and its loader.

The pure-Python path defines the semantics: :mod:`callbridge.ami.framing` reads messages line by line
(``_parse_lines``), :mod:`callbridge.ami.fields` builds snapshots and :mod:`callbridge.ami.decode` types
events with the dataclasses' own constructors. The C loop does the same for the common case in one pass over
the bytes: it splits a run of CRLF messages, builds each message's header dict, its channel snapshots and,
for the event kinds of :data:`C_EVENTS`, the typed event itself (no Python call per event). It only takes
the input on which it agrees with the Python readers and hands anything else back to them, so it changes
costs, never results: the differential tests (tests/ami/test_fastframe.py, tests/fuzz/) frame and decode
the same bytes both ways and compare.

Nothing happens at import: :func:`run_parser` loads and configures the C module on first use (the first
:class:`~callbridge.ami.framing.AmiFramer`), so importing the core (calls/, engine/) never touches it.
``setup.py`` builds it (``optional=True``: without a compiler callbridge runs on the Python path alone).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from typing import Any

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
    ChannelSnapshot,
    DialBegin,
    DialEnd,
    DialState,
    DTMFBegin,
    DTMFEnd,
    Hangup,
    HangupRequest,
    Hold,
    MusicOnHoldStart,
    MusicOnHoldStop,
    NewCallerid,
    Newchannel,
    NewConnectedLine,
    Newstate,
    QueueCallerJoin,
    QueueCallerLeave,
    SoftHangupRequest,
    Unhold,
    VarSet,
)
from callbridge.ami.fields import BRIDGE_FIELDS, SNAPSHOT_FIELDS, UNKNOWN_AS_EMPTY

RunParser = Callable[[bytearray, int, int], "tuple[list[Any], int] | None"]

# Where each field of each event the C loop builds comes from, in the class's field order (the C loop
# builds these while it reads the message; the Python decoders build them otherwise, and are the reference).
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
    "Hold": (Hold, (_TS, _SNAP, _s("MusicClass"))),
    "Unhold": (Unhold, (_TS, _SNAP)),
    "MusicOnHoldStart": (MusicOnHoldStart, (_TS, _SNAP, _s("Class"))),
    "MusicOnHoldStop": (MusicOnHoldStop, (_TS, _SNAP)),
    "DTMFBegin": (DTMFBegin, (_TS, _SNAP, _s("Digit"), _s("Direction"))),
    "DTMFEnd": (DTMFEnd, (_TS, _SNAP, _s("Digit"), _s("Direction"), _i("DurationMs"))),
    "QueueCallerJoin": (QueueCallerJoin, _QUEUE_CALLER),
    "QueueCallerLeave": (QueueCallerLeave, _QUEUE_CALLER),
    "AgentCalled": (AgentCalled, _AGENT),
    "AgentConnect": (AgentConnect, (*_AGENT, _i("HoldTime"), _i("RingTime"))),
    "AgentComplete": (AgentComplete, (*_AGENT, _i("HoldTime"), _i("TalkTime"), _s("Reason"))),
}


def c_event_fields(cls: type[AmiEvent], sources: tuple[Source, ...]) -> tuple[tuple[str, str, str | None], ...]:
    """``(slot, source, header)`` for every field of ``cls``; refuses a table that misses or adds one."""
    names = [f.name for f in dataclasses.fields(cls)]
    if len(names) != len(sources):
        raise TypeError(f"C_EVENTS[{cls.__name__}] has {len(sources)} sources for the fields {names}")
    return tuple((name, source, header) for name, (source, header) in zip(names, sources, strict=True))


@functools.cache
def run_parser(message_type: type) -> RunParser | None:
    """The C loop's ``parse_run``, building ``message_type`` objects and the :data:`C_EVENTS`; ``None`` when
    the C module is not built. Configures the module on the first call only (its state is process-wide)."""
    try:  # on first use, not at import: importing callbridge (the core above all) must not load or set it up
        _fastframe: Any = importlib.import_module("callbridge.ami.fast._fastframe")  # typed by _fastframe.pyi
    except ImportError:  # pragma: no cover - depends on the build
        return None
    _fastframe.configure(message_type)
    _fastframe.configure_snapshots(ChannelSnapshot, SNAPSHOT_FIELDS, ("", "Dest"), UNKNOWN_AS_EMPTY)
    _fastframe.configure_bridge(BridgeSnapshot, BRIDGE_FIELDS)
    for name, (cls, sources) in C_EVENTS.items():
        _fastframe.configure_event(name, cls, c_event_fields(cls, sources))
    parse_run: RunParser = _fastframe.parse_run
    return parse_run
