"""Typed values out of one message's header dict: numbers, flags, channel and bridge snapshots.

The building blocks of :mod:`callbridge.ami.events` decoders. Everything here is on the ingest hot
path, hence the shapes: one ``itemgetter`` call for the twelve snapshot fields, snapshot tuples built
with ``tuple.__new__`` (a NamedTuple's keyword ``__new__`` costs several times more), and event objects
built by :func:`callbridge.fastinit.positional_constructor` rather than the dataclass ``__init__``.

Nothing here raises on odd input: a missing or non-numeric field becomes ``""`` / ``0`` / ``None``.
"""

from __future__ import annotations

import sys
from operator import itemgetter
from typing import Literal, overload

from callbridge.ami.event_types import BridgeSnapshot, ChannelSnapshot

H = dict[str, str]
UNKNOWN = "<unknown>"
intern = sys.intern
_new_snapshot = tuple.__new__  # skips the NamedTuple's keyword-argument __new__

SNAPSHOT_FIELDS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
                   "ConnectedLineName", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip
# One C call for all twelve when every header is there; per prefix ("", "Dest", "Transferer" …), made once.
_GETTERS: dict[str, itemgetter[tuple[str, ...]]] = {}


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
    getter = _GETTERS.get(p)
    if getter is None:
        getter = _GETTERS[p] = itemgetter(*(p + name for name in SNAPSHOT_FIELDS))
    try:
        channel, state, desc, cnum, cname, lnum, lname, context, exten, prio, uid, lid = getter(d)
    except KeyError:  # a header is missing: the slow way, with "" for each missing one
        if not required and p + "Channel" not in d and p + "Uniqueid" not in d:
            return None
        return _partial_snapshot(d, p)
    u = UNKNOWN
    return _new_snapshot(
        ChannelSnapshot,
        (
            channel,
            intern(state),
            intern(desc),
            "" if cnum == u else cnum,
            "" if cname == u else cname,
            "" if lnum == u else lnum,
            "" if lname == u else lname,
            intern(context),
            intern(exten),
            prio,
            uid,
            lid,
        ),
    )


def _partial_snapshot(d: H, p: str) -> ChannelSnapshot:
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
    return BridgeSnapshot(
        g(p + "BridgeUniqueid", ""),
        intern(g(p + "BridgeType", "")),
        intern(g(p + "BridgeTechnology", "")),
        intern(g(p + "BridgeCreator", "")),
        g(p + "BridgeName", ""),
        to_int(g(p + "BridgeNumChannels")),
    )


# The C framing loop builds the snapshots of the two prefixes every hot event uses ("" and "Dest") while it
# reads the headers, by the same rules as snapshot() (fields in this order, "" for <unknown> caller IDs);
# tests/ami/test_fastframe.py decodes every recorded message with and without it and compares.
try:
    from callbridge.ami import _fastframe
except ImportError:  # pragma: no cover - depends on the build
    pass
else:
    _fastframe.configure_snapshots(ChannelSnapshot, SNAPSHOT_FIELDS, ("", "Dest"), (3, 4, 5, 6))
