"""What the demo's MQTT subscriber saw, and waiting for the events a step expects.

The demo judges each step by the events a real subscriber received from the broker — the same
contract call-center software relies on — not by peeking into the daemon.
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


Predicate = Callable[[SeenEvent], bool]


@dataclass
class EventLog:
    """Every CloudEvent the subscriber received, with waiters for expectations."""

    events: list[SeenEvent] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    ids: set[str] = field(default_factory=set)
    duplicates: int = 0

    def add(self, topic: str, envelope: dict[str, Any]) -> SeenEvent | None:
        event_id = str(envelope.get("id", ""))
        if event_id in self.ids:
            # QoS 1 may redeliver; the stable event id lets us de-duplicate, as any subscriber should.
            self.duplicates += 1
            return None
        self.ids.add(event_id)
        type_ = str(envelope.get("type", "")).removeprefix("org.callbridge.")
        data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
        seen = SeenEvent(topic, type_, envelope.get("subject"), data or {}, time.monotonic())
        self.events.append(seen)
        self._changed.set()
        return seen

    def find(self, type_: str, pred: Predicate | None = None, since: int = 0) -> SeenEvent | None:
        for ev in self.events[since:]:
            if ev.type == type_ and (pred is None or pred(ev)):
                return ev
        return None

    async def wait_for(self, type_: str, pred: Predicate | None = None, *, since: int = 0,
                       timeout: float = 10.0) -> SeenEvent | None:
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

    def count(self, type_: str, pred: Predicate | None = None) -> int:
        return sum(1 for ev in self.events if ev.type == type_ and (pred is None or pred(ev)))
