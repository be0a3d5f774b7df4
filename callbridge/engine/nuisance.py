"""Nuisance callers (滋扰治理): a sliding window of calls per caller number across all hotlines."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from callbridge.ami.actions import Action, Redirect, Setvar
from callbridge.dialplan.model import NuisancePolicy
from callbridge.engine import events as ev

if TYPE_CHECKING:
    from callbridge.calls.events import CallOffered
    from callbridge.dialplan.plan import Dialplan
    from callbridge.engine.effects import EffectSink

log = structlog.get_logger("callbridge.engine")


@dataclass(frozen=True, slots=True)
class Verdict:
    count: int
    hotlines: tuple[str, ...]  # hotlines this number called within the window, oldest first


@dataclass(slots=True)
class NuisanceWatch:
    """Counts every offered call; :meth:`offered` returns a verdict when the number is over the threshold.

    Calls to hotlines outside ``policy.hotlines`` still count (the window is across all hotlines), but
    only a call to a watched hotline can be flagged: emergency lines are never filtered.
    """

    _calls: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)
    _next_prune: float = 0.0

    def offered(self, policy: NuisancePolicy | None, caller_num: str, hotline: str, now: float) -> Verdict | None:
        if policy is None or not caller_num or caller_num in policy.exempt:
            return None
        if now >= self._next_prune:
            # Most numbers call once and never again: without this their windows would stay forever (the
            # daemon runs for months). A scan every quarter window keeps at most 1.25 windows of numbers.
            self.prune(policy, now)
            self._next_prune = now + max(policy.window / 4, 1.0)
        window = self._calls.setdefault(caller_num, deque())
        window.append((now, hotline))
        while window and window[0][0] <= now - policy.window:
            window.popleft()
        if policy.hotlines and hotline not in policy.hotlines:
            return None
        if len(window) < policy.threshold:
            return None
        return Verdict(count=len(window), hotlines=tuple(dict.fromkeys(h for _, h in window)))

    def release(self, caller_num: str) -> int:
        """Forget the number's window (a supervisor released it); how many calls it held."""
        window = self._calls.pop(caller_num, None)
        return len(window) if window is not None else 0

    def tracked_numbers(self) -> int:
        """How many caller numbers have a window now (what :meth:`prune` bounds)."""
        return len(self._calls)

    def prune(self, policy: NuisancePolicy | None, now: float) -> None:
        """Forget numbers whose window is empty (bounded memory)."""
        horizon = now - (policy.window if policy is not None else 0)
        for num in [n for n, w in self._calls.items() if not w or w[-1][0] <= horizon]:
            del self._calls[num]


class NuisanceControl:
    """Offered calls → the nuisance policy's actions (tag, announcement) and ``nuisance.flagged``."""

    __slots__ = ("out", "watch")

    def __init__(self, out: EffectSink) -> None:
        self.out = out
        self.watch = NuisanceWatch()

    def release(self, caller_num: str, now: float, *, agent: str = "", reason: str = "") -> dict[str, object]:
        """A supervisor's release: the number starts from zero; ``nuisance.released`` says so."""
        forgotten = self.watch.release(caller_num)
        log.info("nuisance.released", caller_num=caller_num, forgotten_calls=forgotten, agent=agent)
        self.out.publish(ev.NuisanceReleased(ts=now, caller_num=caller_num, forgotten_calls=forgotten, agent=agent,
                                             reason=reason))  # fmt: skip
        return {"caller_num": caller_num, "forgotten_calls": forgotten}

    def offered(self, d: CallOffered, plan: Dialplan, mode: str, now: float) -> None:
        """``d`` is a citizen's call (never a three-way leg callbridge called in: the caller filters them)."""
        policy = plan.nuisance
        active = plan.modes.get(mode)
        if policy is None or (active is not None and not active.nuisance) or not d.hotline:
            return
        verdict = self.watch.offered(policy, d.caller_num, d.hotline, now)
        if verdict is None:
            return
        actions: list[Action] = []
        if "tag" in policy.actions:
            actions.append(Setvar(channel=d.channel, variable="__CB_NUISANCE", value=str(verdict.count)))
        if "announcement" in policy.actions:
            actions.append(Redirect(channel=d.channel, context="cb-announce", exten=d.hotline))
        notify = ("110",) if "notify_110" in policy.actions else ()
        log.warning("nuisance.flagged", caller_num=d.caller_num, count=verdict.count, hotline=d.hotline)
        self.out.publish(ev.NuisanceFlagged(ts=now, call_id=d.call_id, hotline=d.hotline, caller_num=d.caller_num,
                                            count=verdict.count, window_s=float(policy.window),
                                            action=",".join(policy.actions), hotlines_called=verdict.hotlines,
                                            notify=notify))  # fmt: skip
        if actions:
            self.out.send(actions, "nuisance")
