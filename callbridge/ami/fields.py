"""Typed values out of one message's header dict: numbers, flags, channel and bridge snapshots.

The building blocks of the :mod:`callbridge.ami.decode` decoders, and the reference the C loop follows when it
builds the same values (:mod:`callbridge.ami.fast`: field order, ``""`` for ``<unknown>`` caller IDs).
Nothing here raises on odd input: a missing or non-numeric field becomes ``""`` / ``0`` / ``None``.
"""

from __future__ import annotations

import sys
from typing import Literal, overload

from callbridge.ami.event_types import BridgeSnapshot, ChannelSnapshot

H = dict[str, str]
UNKNOWN = "<unknown>"
intern = sys.intern

# The headers of a channel snapshot, in ChannelSnapshot's field order (each under a prefix: "", "Dest" …).
SNAPSHOT_FIELDS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
                   "ConnectedLineName", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip
UNKNOWN_AS_EMPTY = (3, 4, 5, 6)  # the caller ID fields: Asterisk's "<unknown>" there means none
# The headers of a bridge snapshot, in BridgeSnapshot's field order (the last one a number).
BRIDGE_FIELDS = ("BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator", "BridgeName",
                 "BridgeNumChannels")  # fmt: skip


def num(value: str) -> str:
    """A caller/connected number or name: Asterisk's ``<unknown>`` becomes ``""``."""
    return "" if value == UNKNOWN else value


def to_int(value: str | None, default: int = 0) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default


def opt_int(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def yes(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "true", "1", "on")


def timestamp(d: H) -> float | None:
    raw = d.get("Timestamp")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


@overload
def snapshot(d: H, p: str, required: Literal[True]) -> ChannelSnapshot: ...
@overload
def snapshot(d: H, p: str = "", required: bool = False) -> ChannelSnapshot | None: ...
def snapshot(d: H, p: str = "", required: bool = False) -> ChannelSnapshot | None:
    """The channel snapshot under prefix ``p``, ``""`` for each missing field.

    ``None`` when neither ``Channel`` nor ``Uniqueid`` is there, unless ``required`` (the snapshot of a
    channel event is never absent). Low-cardinality strings (state, context, exten) are interned so that
    thousands of stored snapshots share them; caller IDs that Asterisk reports as ``<unknown>`` become ``""``.
    """
    if not required and p + "Channel" not in d and p + "Uniqueid" not in d:
        return None
    g = d.get
    return ChannelSnapshot(
        g(p + "Channel", ""),
        intern(g(p + "ChannelState", "")),
        intern(g(p + "ChannelStateDesc", "")),
        num(g(p + "CallerIDNum", "")),
        num(g(p + "CallerIDName", "")),
        num(g(p + "ConnectedLineNum", "")),
        num(g(p + "ConnectedLineName", "")),
        intern(g(p + "Context", "")),
        intern(g(p + "Exten", "")),
        g(p + "Priority", ""),
        g(p + "Uniqueid", ""),
        g(p + "Linkedid", ""),
    )


EMPTY_SNAPSHOT = ChannelSnapshot("", "", "", "", "", "", "", "", "", "", "", "")


def bridge(d: H, p: str = "") -> BridgeSnapshot:
    g = d.get
    bridge_id, kind, technology, creator, name, channels = (g(p + header, "") for header in BRIDGE_FIELDS)
    return BridgeSnapshot(bridge_id, intern(kind), intern(technology), intern(creator), name, to_int(channels))
