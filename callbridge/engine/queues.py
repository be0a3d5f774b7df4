"""Queue facts the engine decides on: waiting callers, longest wait, free agents (from the tracker)."""

from __future__ import annotations

from collections.abc import Mapping

from callbridge.ami.actions import QueueChangePriorityCaller
from callbridge.calls.model import Queue, QueueCaller
from callbridge.dialplan.plan import Dialplan
from callbridge.engine.authz import CallView, agent_name
from callbridge.engine.events import QueuePrioritySet
from callbridge.engine.overflow import QueueStats
from callbridge.errors import CommandError

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


def waiting_entry(queues: Mapping[str, Queue], call_id: str, caller_channel: str) -> tuple[str, QueueCaller] | None:
    """Where a call waits now: (queue, its entry). The entry may be a Local half (attended transfer)."""
    for name, queue in queues.items():
        for caller in queue.callers.values():
            if not caller.abandoned and (caller.call_id == call_id or caller.channel == caller_channel):
                return name, caller
    return None


def hotlines_of_agent(plan: Dialplan, agent: str) -> set[str]:
    """The hotlines whose queues (agent or expert) list ``agent`` (endpoint name or interface)."""
    wanted = agent_name(agent)
    out: set[str] = set()
    for queue in plan.queues.values():
        if any(agent_name(m) == wanted for m in queue.members):
            owner = plan.hotline_of_queue(queue.name)
            if owner is not None:
                out.add(owner.number)
    return out


def priority_change(
    view: CallView, plan: Dialplan, call_id: str, priority: int, now: float, *, agent: str = "", reason: str = ""
) -> tuple[QueueChangePriorityCaller, QueuePrioritySet]:
    """Authorise a priority change of a waiting call: the action to send and the event to publish.

    Refused (:class:`CommandError`) unless the priority is 0..100, the call is live and waiting in a queue,
    and — when an agent is named — the agent works for the hotline owning that queue or the hotline the
    call came in on.
    """
    if not 0 <= priority <= 100:
        raise CommandError("invalid", f"priority {priority} is outside 0..100")
    call = view.calls.get(call_id)
    if call is None or not call.caller_channel or view.channel(call.caller_channel) is None:
        raise CommandError("unknown_call", f"no live call {call_id!r} on this PBX")
    found = waiting_entry(getattr(view, "queues", {}), call_id, call.caller_channel)
    if found is None:
        raise CommandError("not_waiting", f"call {call_id} is not waiting in a queue")
    name, entry = found
    owner = plan.hotline_of_queue(name)
    hotline = owner.number if owner is not None else call.hotline
    who = agent_name(agent)
    if who and not hotlines_of_agent(plan, who) & {hotline, call.hotline}:
        raise CommandError("unauthorised", f"agent {who!r} works for neither hotline {hotline} nor {call.hotline}")
    event = QueuePrioritySet(ts=now, call_id=call_id, hotline=hotline, queue=name, priority=priority,
                             caller_num=call.caller_num, channel=entry.channel, agent=who,
                             reason=reason or "raised while waiting")  # fmt: skip
    return raise_priority(name, entry.channel, priority), event
