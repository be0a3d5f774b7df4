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


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxDeadLetter(DomainEvent):
    """A message the broker would not take was set aside as a dead letter; delivery goes on."""

    TYPE: ClassVar[str] = "outbox.dead_letter"
    DOC: ClassVar[str] = (
        "Alarm: the broker refused a message (a failure PUBACK, a topic no broker accepts, or the "
        "connection dropped repeatedly with that message the oldest in flight); it moved to the dead-letter "
        "table with the reason and the messages behind it are delivered. `callbridge deadletters` lists, "
        "retries and drops dead letters. `topic` is ASCII-escaped."
    )

    letter_id: int
    seq: int
    topic: str
    reason: str
    dead_letters: int
