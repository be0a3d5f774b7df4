"""Overflow to remote seats as decisions: the watch's starts and stops become actions and events (pure).

:class:`~callbridge.engine.overflow.OverflowWatch` says when a rule starts or stops; this turns that into
the ``CB_OVERFLOW_<hotline>`` global (the rendered dialplan routes new callers on it), the waiting
callers withdrawn to the remote seats, the ``queue.overflow_*`` events, and the one-second tick while a
rule is active (the longest wait grows without any event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from callbridge.ami.actions import Action, QueueWithdrawCaller, Setvar
from callbridge.engine import events as ev
from callbridge.engine.overflow import OverflowDecision, OverflowWatch
from callbridge.engine.queues import all_stats
from callbridge.errors import CommandError

if TYPE_CHECKING:
    from callbridge.calls.model import Queue
    from callbridge.dialplan.plan import Dialplan
    from callbridge.engine.effects import EffectSink

log = structlog.get_logger("callbridge.engine")

TICK = "overflow:tick"
TICK_S = 1.0


class OverflowControl:
    """Checks the overflow rules of the current mode against the queues, writing effects to ``out``."""

    __slots__ = ("_ticking", "out", "watch")

    def __init__(self, out: EffectSink) -> None:
        self.out = out
        self.watch = OverflowWatch()
        self._ticking = False

    @property
    def active(self) -> list[str]:
        """The ids of the overflows in effect, sorted."""
        return sorted(self.watch.active)

    def ticked(self, plan: Dialplan, mode: str, queues: Mapping[str, Queue], now: float) -> None:
        self._ticking = False
        self.check(plan, mode, queues, now)

    def check(self, plan: Dialplan, mode: str, queues: Mapping[str, Queue], now: float) -> None:
        rules = plan.overflows_in(mode) if mode in plan.modes or not plan.modes else ()
        if not rules and not self.watch.active:
            return
        names = {o.queue for o in rules} | {o.queue for o in self.watch.active.values()}
        for d in self.watch.evaluate(tuple(rules), all_stats(queues, names, now)):
            owner = plan.hotline_of_queue(d.overflow.queue)
            self._apply(d, owner.number if owner is not None else "", now)
        if rules or self.watch.active:
            self._tick()

    def _tick(self) -> None:
        if not self._ticking:
            # the longest wait grows without any event: look again every second while a rule is active
            self._ticking = True
            self.out.start_timer(TICK, TICK_S)

    def send_now(self, plan: Dialplan, mode: str, queues: Mapping[str, Queue], queue: str, now: float, *,
                 agent: str = "") -> dict[str, object]:
        """A supervisor's "send the waiting callers to the remote seats" for ``queue``, whatever the
        thresholds: its overflow rule (the mode's, else the dialplan's) starts (``reason: manual``) and every
        waiting caller is withdrawn to its target; the watch ends it as usual once the queue has recovered."""
        in_mode = plan.overflows_in(mode) if mode in plan.modes or not plan.modes else ()
        rule = next((o for o in (*in_mode, *plan.overflows.values()) if o.queue == queue), None)
        if rule is None:
            raise CommandError("no_rule", f"queue {queue!r} has no overflow to remote seats")
        owner = plan.hotline_of_queue(queue)
        hotline = owner.number if owner is not None else ""
        s = all_stats(queues, {queue}, now)[queue]
        callers = s.callers
        started = rule.id not in self.watch.active
        if started:
            self.watch.active[rule.id] = rule
            self._apply(OverflowDecision(rule, "start", "manual", s), hotline, now, withdraw=callers, agent=agent)
        elif callers:
            self.out.send([QueueWithdrawCaller(queue=queue, caller=c, withdraw_info=rule.id) for c in callers],
                          "overflow")
        self._tick()
        return {"queue": queue, "overflow": rule.id, "target": rule.to_queue or rule.to_trunk or "",
                "withdrawn": len(callers), "started": started}

    def _apply(self, d: OverflowDecision, hotline: str, now: float, *, withdraw: tuple[str, ...] | None = None,
               agent: str = "") -> None:
        s = d.stats
        log.info("overflow." + ("started" if d.change == "start" else "ended"), overflow=d.overflow.id,
                 queue=d.overflow.queue, reason=d.reason, waiting=s.waiting, free_agents=s.free_agents,
                 longest_wait_s=round(s.longest_wait_s, 1), agent=agent)  # fmt: skip
        if withdraw is None:
            withdraw = self.watch.withdraw_candidates(d.overflow, s)
        if d.change == "start":
            actions: list[Action] = [Setvar(variable=f"CB_OVERFLOW_{hotline}", value=d.overflow.id)]
            actions += [QueueWithdrawCaller(queue=d.overflow.queue, caller=c, withdraw_info=d.overflow.id)
                        for c in withdraw]  # fmt: skip
            self.out.send(actions, "overflow")
            self.out.publish(ev.QueueOverflowStarted(ts=now, hotline=hotline or None, queue=d.overflow.queue,
                                                     target=d.overflow.to_queue or d.overflow.to_trunk or "",
                                                     reason=d.reason, waiting=s.waiting,
                                                     longest_wait_s=round(s.longest_wait_s, 1),
                                                     free_agents=s.free_agents))  # fmt: skip
        else:
            self.out.send([Setvar(variable=f"CB_OVERFLOW_{hotline}", value="")], "overflow")
            self.out.publish(ev.QueueOverflowEnded(ts=now, hotline=hotline or None, queue=d.overflow.queue,
                                                   reason=d.reason, waiting=s.waiting,
                                                   longest_wait_s=round(s.longest_wait_s, 1),
                                                   free_agents=s.free_agents))  # fmt: skip
