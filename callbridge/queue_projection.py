"""Queues and hotlines as the retained state topics and the wallboard show them: a pure projection.

The tracker knows each queue's callers and members; the dialplan knows which queues a hotline's agents sit
in. :func:`queue_states` gives one ``state/queues/<q>`` per queue of the dialplan, :func:`hotline_states` sums
them per hotline (``state/hotlines/<n>``, and the wallboard's free agents: no call event carries those).
No I/O, no clock of its own: ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping

from callbridge.bus.state import HotlineState, QueueState
from callbridge.calls.model import Queue
from callbridge.dialplan.plan import Dialplan
from callbridge.engine.queues import queue_stats


def queue_states(plan: Dialplan, queues: Mapping[str, Queue], now: float) -> dict[str, QueueState]:
    """Every queue of the dialplan at ``now`` (a queue the PBX has not reported yet: empty, no agents)."""
    out: dict[str, QueueState] = {}
    for name in plan.queues:
        queue = queues.get(name)
        stats = queue_stats(queue, now)
        members = len(queue.members) if queue is not None else 0
        owner = plan.hotline_of_queue(name)
        out[name] = QueueState(
            queue=name, hotline=owner.number if owner else None, waiting=stats.waiting,
            longest_wait_s=round(stats.longest_wait_s, 1), agents_free=stats.free_agents,
            agents_busy=max(members - stats.free_agents, 0), ts=now,
        )  # fmt: skip
    return out


def hotline_states(plan: Dialplan, queues: Mapping[str, QueueState], now: float) -> dict[str, HotlineState]:
    """Per hotline, its agent queues summed (the longest wait is the longest of them); a hotline none of
    whose agent queues is known is left out."""
    out: dict[str, HotlineState] = {}
    for hotline in plan.hotlines.values():
        rows = [queues[q] for q in hotline.agent_queues if q in queues]
        if rows:
            out[hotline.number] = HotlineState(
                hotline=hotline.number, waiting=sum(r.waiting for r in rows),
                longest_wait_s=max(r.longest_wait_s for r in rows), agents_free=sum(r.agents_free for r in rows),
                agents_busy=sum(r.agents_busy for r in rows), ts=now,
            )  # fmt: skip
    return out
