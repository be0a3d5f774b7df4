"""The two-centre link inside one daemon (issue 21): the wiring the composition root does once.

With ``centres.peer_site`` set, :class:`CentresService` holds

* the :class:`~callbridge.centres.binder.HandoverBinder`, the engine service's stage in front of the sinks
  (:meth:`CentresService.interleave`: an inbound call that queues, is answered or ends), reading the
  hand-over header from the tracker's ``CB_HANDOVER_IN`` channel variable; what it binds, marks failed or
  learns of the bound call (``handover.bound`` / ``.failed`` / ``.answered`` / ``.abandoned``) goes out
  like any event, inside the batch right behind the event it answers: published, recorded, on the
  console, known to the feedback desk;
* the :class:`~callbridge.bus.peer.PeerSubscriber` (when the bus is on), whose peer events go to
  :meth:`take`: the binder (the hand-over data, the sender's outcome), the feedback desk (feedback on a
  hand-over from the other centre), and — the peer's loop events only (``handover.*``: its bindings,
  failures and feedback) — the records and the console. Peer events never go back to the bus: they are
  the peer's, published by it (no echo between the centres).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from callbridge.bus.config import BusSettings
from callbridge.bus.peer import PeerSubscriber
from callbridge.bus.topics import Topics
from callbridge.calls.events import CallQueued
from callbridge.calls.tracker import CallTracker
from callbridge.centres.binder import HandoverBinder, RemoteHandover, handover_fields
from callbridge.centres.events import HandoverAnnounced
from callbridge.centres.header import INBOUND_VAR
from callbridge.centres.link import peer_filters
from callbridge.centres.report import announced_pending
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.settings import CentresSettings
from callbridge.store.backend import Backend

log = structlog.get_logger("callbridge.centres")

Sink = Callable[[Sequence[DomainEvent]], object]
#: The peer's events that this centre records and shows: the loop as the other centre tells it.
RECORDED = ("handover.",)
#: How far back a restarted daemon takes up the hand-overs announced to it and not bound yet (seconds).
RECALL_S = 3600.0


def local_hotlines(plan: Dialplan) -> frozenset[str]:
    """The hotlines this centre serves itself (callers land here, or agents answer here)."""
    return frozenset(h.number for h in plan.hotlines.values() if h.dids or h.agent_queues)


class CentresService:
    def __init__(
        self,
        centres: CentresSettings,
        *,
        peer_site: str,
        plan: Callable[[], Dialplan],
        tracker: CallTracker,
        publish: Callable[[Sequence[DomainEvent]], None],
        learners: Sequence[Sink] = (),
        recorders: Sequence[Sink] = (),
        bus: BusSettings | None,
        records: Backend | None = None,
        now: float = 0.0,
    ) -> None:
        """``learners`` (the feedback desk) get the peer's ``transfer.*`` events (the hand-overs it sends us);
        ``recorders`` (records, console) get its loop events (``handover.*``); ``records`` (the store at
        ``now``) gives back the hand-overs announced within :data:`RECALL_S` and not bound yet."""
        self.peer_site = peer_site
        self._tracker = tracker
        self._plan = plan
        self._publish = publish
        self.binder = HandoverBinder(publish, hotlines=lambda: local_hotlines(plan()), header_of=self.header_of,
                                     centre=peer_site, window_s=centres.window_s, on_learn=self._announce)  # fmt: skip
        if records is not None:
            self.binder.recall(announced_pending(records, since=now - RECALL_S))
        self._learners = tuple(learners)
        self._recorders = tuple(recorders)
        self.subscriber: PeerSubscriber | None = None
        if bus is not None:
            filters = peer_filters(Topics(bus.site).root, peer_site, local_hotlines(plan()))
            self.subscriber = PeerSubscriber(bus, peer_site=peer_site, filters=filters, deliver=self.take)

    def _announce(self, h: RemoteHandover) -> None:
        """A new hand-over from the other centre: published (an early pop) and recorded (a restart recalls it)."""
        self._publish([HandoverAnnounced(ts=h.ts, call_id=None, hotline=h.to_hotline, remote_call_id=h.remote_call_id,
                                         **handover_fields(h, self.peer_site))])  # fmt: skip

    def header_of(self, channel: str) -> str:
        """The raw ``CB_HANDOVER_IN`` of an inbound leg (``""`` when the peer stripped the header)."""
        ch = self._tracker.channel_by_name(channel)
        return ch.variables.get(INBOUND_VAR, "") if ch is not None else ""

    def __call__(self, events: Sequence[DomainEvent]) -> None:
        """An event sink of this centre's events (what they lead to goes out after them)."""
        self.binder(events)

    def interleave(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """The engine service's stage: this centre's batch with the binder's events inside it, each right
        behind the event it answers (the binding before an agent rung in the same batch)."""
        return self.binder.interleave(events)

    def take(self, events: Sequence[DomainEvent]) -> None:
        """The peer's events (validated by the link)."""
        loop = [e for e in events if e.TYPE.startswith(RECORDED)]
        steps = [e for e in events if not e.TYPE.startswith(RECORDED)]  # the sender's transfer.*
        if steps:
            self.binder(self._waiting_now())  # callers a restart found already queued (no call.queued for them)
            self.binder.remote(steps)
            for sink in self._learners:
                sink(steps)
        if loop:
            for sink in self._recorders:
                sink(loop)
        for e in events:
            log.info("centres.peer_event", peer=self.peer_site, type=e.TYPE, transfer_id=getattr(e, "transfer_id", ""))

    def _waiting_now(self) -> list[DomainEvent]:
        """The callers in this centre's queues as the tracker knows them, as ``call.queued`` for the binder.

        A daemon (re)started while a handed-over caller already waits learns of it from the PBX's queue status
        (the resync), which announces no ``call.queued``; the binder considers each call once, so passing every
        waiting caller again costs nothing for the ones it has seen."""
        out: list[DomainEvent] = []
        for queue in self._tracker.queues.values():
            for c in queue.callers.values():
                call = self._tracker.calls.get(c.call_id)
                if call is not None and call.hotline:
                    out.append(CallQueued(ts=c.joined, call_id=c.call_id, hotline=call.hotline, queue=queue.name,
                                          position=c.position, count=len(queue.callers), caller_num=c.caller_num,
                                          channel=c.channel))  # fmt: skip
        return out

    def stop(self) -> None:
        if self.subscriber is not None:
            self.subscriber.link.stop()
