"""Queue facts the engine decides on: waiting callers, longest wait, free agents (from the tracker)."""

from __future__ import annotations

from collections.abc import Mapping

from callbridge.ami.actions import QueueChangePriorityCaller
from callbridge.calls.model import Queue
from callbridge.engine.overflow import QueueStats

#: AST_DEVICE_NOT_INUSE: a member that is idle (and not paused) can take a call now.
DEVICE_NOT_INUSE = 1


def queue_stats(queue: Queue | None, now: float) -> QueueStats:
    if queue is None:
        return QueueStats(0, 0.0, 0)
    callers = queue.ordered_callers()
    longest = max((now - c.joined for c in callers), default=0.0)
    free = sum(1 for m in queue.members.values() if m.status == DEVICE_NOT_INUSE and not m.paused)
    return QueueStats(len(callers), max(longest, 0.0), free, tuple(c.channel for c in callers))


def all_stats(queues: Mapping[str, Queue], names: set[str], now: float) -> dict[str, QueueStats]:
    return {name: queue_stats(queues.get(name), now) for name in names}


def raise_priority(queue: str, channel: str, priority: int) -> QueueChangePriorityCaller:
    """Move a waiting caller up now (``Immediate``), not only for the next position change."""
    return QueueChangePriorityCaller(queue=queue, caller=channel, priority=priority, immediate=True)
