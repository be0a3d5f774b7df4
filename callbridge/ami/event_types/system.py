"""Typed AMI events of conferences and of the PBX itself: ConfBridge rooms and parties (with the list items
of ConfbridgeListRooms/ConfbridgeList), OriginateResponse, UserEvent, FullyBooted and Shutdown.

One family of the :mod:`callbridge.ami.event_types` catalogue (import the classes from there), split out by
subject to keep modules small.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.ami.event_types.base import (
    AmiEvent,
    BridgeSnapshot,
    ChannelEvent,
    ChannelSnapshot,
)


# ConfBridge (rooms are bridges of type "base"/softmix; the CBAnn/<room> announcer gets no BridgeEnter)
@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeStart(AmiEvent):
    NAME = "ConfbridgeStart"
    conference: str
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeEnd(AmiEvent):
    NAME = "ConfbridgeEnd"
    conference: str
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeJoin(ChannelEvent):
    NAME = "ConfbridgeJoin"
    conference: str
    bridge: BridgeSnapshot
    admin: bool
    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeLeave(ChannelEvent):
    NAME = "ConfbridgeLeave"
    conference: str
    bridge: BridgeSnapshot
    admin: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeMute(ChannelEvent):
    NAME = "ConfbridgeMute"
    conference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeUnmute(ChannelEvent):
    NAME = "ConfbridgeUnmute"
    conference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeList(ChannelEvent):
    """List item of ConfbridgeList: one party of a room."""

    NAME = "ConfbridgeList"
    conference: str
    admin: bool
    muted: bool
    talking: bool
    waiting: bool
    answered_time: int
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeListRooms(AmiEvent):
    NAME = "ConfbridgeListRooms"
    conference: str
    parties: int
    locked: bool
    muted: bool
    action_id: str


# Misc
@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResponse(AmiEvent):
    NAME = "OriginateResponse"
    action_id: str
    response: str  # Success | Failure
    channel: str  # on failure: the dial string
    uniqueid: str  # on failure: the requested ChannelId (no channel exists)
    reason: int  # 4 answered, 0 failed, 1 hung up, 3 ring timeout, 5 busy, 8 congestion
    context: str
    exten: str
    caller_num: str
    caller_name: str
    application: str
    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(AmiEvent):
    NAME = "UserEvent"
    user_event: str
    snap: ChannelSnapshot | None
    fields: tuple[tuple[str, str], ...]  # the user-supplied headers


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted(AmiEvent):
    NAME = "FullyBooted"
    status: str
    uptime: int | None
    last_reload: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(AmiEvent):
    NAME = "Shutdown"
    shutdown: str  # Cleanly | Uncleanly
    restart: bool
