"""Domain events the records side emits itself (alarms).

They are ordinary :class:`~callbridge.domain.DomainEvent` subclasses, so the bus publishes them and the
records store writes them like any other event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerRateLow(DomainEvent):
    """The manual answer rate (人工接通率) of a hotline fell under its target."""

    TYPE: ClassVar[str] = "kpi.answer_rate_low"
    DOC: ClassVar[str] = "The manual answer rate of a hotline today fell under the dialplan's target (default 80 %)."

    rate: float  # answered / (answered + abandoned), 0..1 — finished offers only (see store.kpi)
    target: float  # the target it fell under, 0..1
    offered: int
    answered: int
    period: str = "today"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordsBacklog(DomainEvent):
    """The records queue passed its bound: events are being dropped, not written (calls are unaffected)."""

    TYPE: ClassVar[str] = "records.backlog"
    DOC: ClassVar[str] = "The records writer queue is full; events are dropped from the records until it drains."

    depth: int  # events waiting when the alarm was raised
    bound: int  # the queue's bound
    dropped: int  # events dropped so far (process lifetime)
