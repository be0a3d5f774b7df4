"""Typed AMI events of queues: callers joining/leaving, agents rung and connected, member changes, and the
list items of QueueStatus (QueueParams, QueueMember, QueueEntry).

One family of the :mod:`callbridge.ami.event_types` catalogue (import the classes from there), split out by
subject to keep modules small.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.ami.event_types.base import AmiEvent, ChannelEvent, ChannelSnapshot


# Queues (``Priority`` in these is the dialplan priority; QUEUE_PRIO only shows in QueueEntry)
@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerEvent(ChannelEvent):
    """A caller entering or leaving a queue: the queue, the caller's position in it and how many wait."""

    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(QueueCallerEvent):
    NAME = "QueueCallerJoin"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(QueueCallerEvent):
    NAME = "QueueCallerLeave"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    NAME = "QueueCallerAbandon"
    queue: str
    position: int
    original_position: int
    hold_time: int  # seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(ChannelEvent):
    """``snap`` is the queued caller, ``dest`` the member's channel."""

    dest: ChannelSnapshot | None
    queue: str
    member_name: str
    interface: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    NAME = "AgentCalled"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    NAME = "AgentConnect"
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    NAME = "AgentComplete"
    hold_time: int
    talk_time: int
    reason: str  # caller | agent | transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    NAME = "AgentRingNoAnswer"
    ring_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberEvent(AmiEvent):
    queue: str
    member_name: str
    interface: str  # Interface (events) / Location (QueueMember list)
    state_interface: str
    status: int  # AST_DEVICE_* (1 not in use, 2 in use, 3 busy, 5 unavailable, 6 ringing …)
    paused: bool
    paused_reason: str
    in_call: bool
    calls_taken: int
    penalty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberAdded(QueueMemberEvent):
    NAME = "QueueMemberAdded"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved(QueueMemberEvent):
    NAME = "QueueMemberRemoved"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberPause(QueueMemberEvent):
    NAME = "QueueMemberPause"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberStatus(QueueMemberEvent):
    NAME = "QueueMemberStatus"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember(QueueMemberEvent):
    """List item of QueueStatus."""

    NAME = "QueueMember"
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry(AmiEvent):
    """List item of QueueStatus: one waiting caller. ``priority`` IS the queue priority (QUEUE_PRIO)."""

    NAME = "QueueEntry"
    queue: str
    position: int
    channel: str
    uniqueid: str
    caller_num: str
    caller_name: str
    connected_num: str
    connected_name: str
    wait: int  # seconds waited so far
    priority: int
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams(AmiEvent):
    NAME = "QueueParams"
    queue: str
    max: int
    strategy: str
    calls: int
    holdtime: int
    talktime: int
    completed: int
    abandoned: int
    action_id: str
