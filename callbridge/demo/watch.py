"""What the demo's MQTT subscriber saw, and waiting for the events a step expects.

The demo judges each step by the events a real subscriber received from the broker — the same
contract call-center software relies on — not by peeking into the daemon.

One event is published on several topics (its hotline, the destination hotline of a transfer, the
call's own topic) with the same envelope id, so the log keeps one entry per (id, topic): a check can
ask "did 110's software see it?". Only a second delivery of the same id *on the same topic* is a
duplicate (QoS 1 redelivery, which any subscriber must tolerate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SeenEvent:
    topic: str
    type: str  # CloudEvents type without the "org.callbridge." prefix
    subject: str | None
    data: dict[str, Any]
    received: float
    id: str = ""
    seq: int = 0  # the daemon's per-site sequence number: the order it emitted events in

    def on_hotline(self, hotline: str) -> bool:
        """Delivered on ``callbridge/<site>/events/<hotline>/…`` (what that hotline's software reads)."""
        return f"/events/{hotline}/" in self.topic


Predicate = Callable[[SeenEvent], bool]


@dataclass
class EventLog:
    """Every CloudEvent delivery the subscriber received, with waiters for expectations."""

    events: list[SeenEvent] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    deliveries: set[tuple[str, str]] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    #: The first delivery of each event id, in arrival order (what a person wants to read).
    firsts: list[SeenEvent] = field(default_factory=list)
    duplicates: int = 0
    #: Called with each new delivery (the plain narration prints from here).
    listeners: list[Callable[[SeenEvent], None]] = field(default_factory=list)

    def add(self, topic: str, envelope: dict[str, Any]) -> SeenEvent | None:
        event_id = str(envelope.get("id", ""))
        if (event_id, topic) in self.deliveries:
            # QoS 1 may redeliver; the stable event id lets us de-duplicate, as any subscriber should.
            self.duplicates += 1
            return None
        self.deliveries.add((event_id, topic))
        first = event_id not in self.ids
        self.ids.add(event_id)
        type_ = str(envelope.get("type", "")).removeprefix("org.callbridge.")
        raw = envelope.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        seq = envelope.get("seq")
        seen = SeenEvent(topic, type_, envelope.get("subject"), data, time.monotonic(), event_id,
                         seq if isinstance(seq, int) else 0)
        self.events.append(seen)
        self._changed.set()
        if first:
            self.firsts.append(seen)
            for listener in self.listeners:
                listener(seen)
        return seen

    @property
    def mark(self) -> int:
        """Position to pass as ``since`` so a step only looks at what arrived after it began."""
        return len(self.events)

    def find(self, type_: str, pred: Predicate | None = None, since: int = 0) -> SeenEvent | None:
        for ev in self.events[since:]:
            if ev.type == type_ and (pred is None or pred(ev)):
                return ev
        return None

    async def wait_for(self, type_: str, pred: Predicate | None = None, *, since: int = 0,
                       timeout: float = 10.0) -> SeenEvent | None:  # noqa: ASYNC109 - None on timeout, by design
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(type_, pred, since)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return self.find(type_, pred, since)

    def unique(self, type_: str, pred: Predicate | None = None) -> list[SeenEvent]:
        """One entry per event id (the first delivery seen), whatever topics it came on."""
        out: dict[str, SeenEvent] = {}
        for ev in self.events:
            if ev.type == type_ and ev.id not in out and (pred is None or pred(ev)):
                out[ev.id] = ev
        return list(out.values())

    def count(self, type_: str, pred: Predicate | None = None) -> int:
        return len(self.unique(type_, pred))
