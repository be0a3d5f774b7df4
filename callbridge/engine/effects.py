"""What the pure engine asks the outside world to do (sans-IO, in the style of h11).

The engine never performs I/O: every decision is a list of effects, written by the engine's parts to
one :class:`EffectSink` and executed in order by the interpreter
(:mod:`callbridge.runtime.engine_service`), which feeds the results back as inputs
(:class:`ActionResult`, timer fires). Tests run the engine by reading these values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
class Log:
    """An INFO log line about a decision, written by the interpreter once the decision's actions are on
    their way (with the domain events of the same loop iteration).

    Rendering a JSON log line costs about as much as the rest of a one-key transfer decision, so the
    lines on the DTMF → first-action path (``dtmf.code``, the ``requested → sending`` transition) wait
    until the first action was written. Other lines are logged at once, as usual.
    """

    event: str
    fields: Mapping[str, Any]
    logger: str = "callbridge.engine"


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)arm the timer ``key``; when it fires the interpreter calls ``engine.on_timer(key, now)``."""

    key: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: str


Effect = SendActions | Publish | Log | StartTimer | CancelTimer

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


#: May this batch be sent? (the engine's structural guarantees, see :class:`callbridge.engine.core.Engine`)
SendGuard = Callable[[Sequence[Action], str], bool]


class EffectSink:
    """Where every part of the engine writes its effects, in decision order; the interpreter drains it.

    One sink per engine, handed to each part that decides (the transfers' steps, the observer, the
    request desk, the overflow and nuisance controls): they share the order of their effects, nothing else.
    """

    __slots__ = ("_guard", "_out")

    def __init__(self, guard: SendGuard | None = None) -> None:
        self._out: list[Effect] = []
        self._guard = guard

    def guard_with(self, guard: SendGuard) -> None:
        """Install the check every :meth:`send` passes (set once the parts it reads exist)."""
        self._guard = guard

    def publish(self, event: DomainEvent) -> None:
        self._out.append(Publish(event))

    def send(self, actions: Sequence[Action], tag: str = "") -> None:
        """One batch of actions (see :class:`SendActions`); dropped when the guard refuses it."""
        if self._guard is not None and not self._guard(actions, tag):
            return
        self._out.append(SendActions(tuple(actions), tag))

    def log_later(self, event: str, *, logger: str = "callbridge.engine", **fields: Any) -> None:
        """An INFO line the interpreter writes after this decision's first action (see :class:`Log`)."""
        self._out.append(Log(event, fields, logger))

    def start_timer(self, key: str, seconds: float) -> None:
        self._out.append(StartTimer(key, seconds))

    def cancel_timer(self, key: str) -> None:
        self._out.append(CancelTimer(key))

    def extend(self, effects: Iterable[Effect]) -> None:
        """Effects decided elsewhere, appended as they are (tests, replays)."""
        self._out.extend(effects)

    def drain(self) -> list[Effect]:
        out, self._out = self._out, []
        return out
