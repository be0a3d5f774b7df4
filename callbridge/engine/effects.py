"""What the pure engine asks the outside world to do (sans-IO, in the style of h11).

The engine never performs I/O: every decision is a list of effects, executed in order by the
interpreter (:mod:`callbridge.engine.service`), which feeds the results back as inputs
(:class:`ActionResult`, timer fires). Tests run the engine by reading these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callbridge.ami.actions import Action
from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True)
class SendActions:
    """Send ``actions`` in order, stopping at the first failure; report once with ``tag``.

    One batch per decision because the order matters (hand-over variables before the Redirect) and a
    failed Setvar must stop the Redirect that would carry an incomplete hand-over.
    """

    actions: tuple[Action, ...]
    tag: str = ""  # "" = nobody waits for the outcome (a failure is only logged)


@dataclass(frozen=True, slots=True)
class Publish:
    event: DomainEvent


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)arm the timer ``key``; when it fires the interpreter calls ``engine.on_timer(key, now)``."""

    key: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: str


Effect = SendActions | Publish | StartTimer | CancelTimer

Outcome = Literal["ok", "failed", "unknown", "unavailable"]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one :class:`SendActions` batch.

    ``failed``: Asterisk answered ``Response: Error`` (nothing after ``index`` was sent);
    ``unavailable``: not connected, nothing written; ``unknown``: the connection dropped after writing
    (never re-sent — reconciled against the next resync).
    """

    tag: str
    outcome: Outcome
    index: int = 0  # the action that failed / whose outcome is unknown
    error: str = ""
