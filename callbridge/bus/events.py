"""Domain events the bus itself emits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxFull(DomainEvent):
    """The outbox reached its size bound and dropped the oldest rows (state first, then events)."""

    TYPE: ClassVar[str] = "outbox.full"
    DOC: ClassVar[str] = (
        "Alarm: the durable outbox reached max_rows while the broker was unreachable or slow; the oldest "
        "retained-state rows, then the oldest event rows were dropped (counts are cumulative)."
    )

    depth: int
    max_rows: int
    dropped_state: int
    dropped_events: int
    policy: str = "drop-oldest-state-then-events"
