"""Typed AMI actions of queues: members (add, remove, pause), status and summary, and a waiting caller's
priority or withdrawal (the expert-seat priority queues and the overflow).

One family of the :mod:`callbridge.ami.actions` catalogue (import the actions from there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Action, hdr

# --- queues -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAdd(Action):
    name: ClassVar[str] = "QueueAdd"
    queue: str = hdr("Queue")
    interface: str = hdr("Interface")
    member_name: str | None = hdr("MemberName", default=None)
    penalty: int | None = hdr("Penalty", default=None)
    paused: bool | None = hdr("Paused", default=None)
    state_interface: str | None = hdr("StateInterface", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRemove(Action):
    name: ClassVar[str] = "QueueRemove"
    queue: str = hdr("Queue")
    interface: str = hdr("Interface")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePause(Action):
    """Pause/unpause ``interface`` in ``queue`` (all its queues when ``queue`` is None)."""

    name: ClassVar[str] = "QueuePause"
    interface: str = hdr("Interface")
    paused: bool = hdr("Paused")
    queue: str | None = hdr("Queue", default=None)
    reason: str | None = hdr("Reason", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStatus(Action):
    name: ClassVar[str] = "QueueStatus"
    queue: str | None = hdr("Queue", default=None)
    member: str | None = hdr("Member", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSummary(Action):
    name: ClassVar[str] = "QueueSummary"
    queue: str | None = hdr("Queue", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueChangePriorityCaller(Action):
    """Change a waiting caller's priority; ``immediate`` also moves it in the queue now."""

    name: ClassVar[str] = "QueueChangePriorityCaller"
    queue: str = hdr("Queue")
    caller: str = hdr("Caller")
    priority: int = hdr("Priority")
    immediate: bool | None = hdr("Immediate", default=None, bools="yesno")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueWithdrawCaller(Action):
    name: ClassVar[str] = "QueueWithdrawCaller"
    queue: str = hdr("Queue")
    caller: str = hdr("Caller")
    withdraw_info: str | None = hdr("WithdrawInfo", default=None)
