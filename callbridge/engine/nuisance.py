"""Nuisance callers (滋扰治理): a sliding window of calls per caller number across all hotlines."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict
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


#: Caller numbers with a window at most; beyond it the number whose last call is the oldest is forgotten
#: (LRU). A day's traffic keeps far fewer (a window's worth of distinct numbers: hundreds to a few thousand),
#: but a flood of distinct numbers (issue 17.5: hundreds of calls a second) would otherwise keep a window
#: per number for the whole ``window`` — megabytes per flood, given back only ten minutes later. What it
#: costs under such a flood: a number calling again only after 10,000 other numbers called starts afresh.
MAX_NUMBERS = 10_000
#: Calls remembered per number at most, the oldest dropped first (the threshold is at most 1,000, so a
#: number over it is still flagged; its ``count`` then says 1,000).
MAX_CALLS = 1_000
#: Calls remembered in all windows together at most (the least recently calling numbers forgotten first):
#: with the two bounds above the windows hold at most ~4 MB, whatever the traffic.
MAX_HELD = 100_000


class _Window:
    """One number's calls within the window, oldest first: their times and hotlines side by side (16 bytes
    a call, against 88 for a tuple of both)."""

    __slots__ = ("hotlines", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.hotlines: list[str] = []

    def drop(self, count: int) -> None:
        del self.times[:count]
        del self.hotlines[:count]


@dataclass(slots=True)
class NuisanceWatch:
    """Counts every offered call; :meth:`offered` returns a verdict when the number is over the threshold.

    Calls to hotlines outside ``policy.hotlines`` still count (the window is across all hotlines), but
    only a call to a watched hotline can be flagged: emergency lines are never filtered.

    Memory is bounded by age and by count: the windows are kept least recently calling number first, so a
    number whose last call left the window is at the front and is forgotten there (no scan of the rest);
    beyond ``max_numbers`` numbers or ``max_held`` calls in all, the front numbers are forgotten too, and a
    number keeps at most ``max_calls`` calls.
    """

    max_numbers: int = MAX_NUMBERS
    max_calls: int = MAX_CALLS
    max_held: int = MAX_HELD
    _calls: OrderedDict[str, _Window] = field(default_factory=OrderedDict)
    #: Calls held in all windows now (what ``max_held`` bounds).
    held: int = 0
    #: Numbers forgotten for a count bound while their window still held calls (since start).
    evicted: int = 0

    def offered(self, policy: NuisancePolicy | None, caller_num: str, hotline: str, now: float) -> Verdict | None:
        if policy is None or not caller_num or caller_num in policy.exempt:
            return None
        self.prune(policy, now)
        window = self._window(caller_num)
        window.times.append(now)
        window.hotlines.append(hotline)
        self.held += 1
        expired = bisect_right(window.times, now - policy.window)
        drop = max(expired, len(window.times) - self.max_calls)
        if drop:
            window.drop(drop)
            self.held -= drop
        self._bound()
        if policy.hotlines and hotline not in policy.hotlines:
            return None
        count = len(window.times)
        if count < policy.threshold:
            return None
        return Verdict(count=count, hotlines=tuple(dict.fromkeys(window.hotlines)))

    def _window(self, caller_num: str) -> _Window:
        """The number's window, now the most recently calling one (a new one when it has none)."""
        calls = self._calls
        window = calls.get(caller_num)
        if window is None:
            window = calls[caller_num] = _Window()
        else:
            calls.move_to_end(caller_num)
        return window

    def _bound(self) -> None:
        """Forget the least recently calling numbers while a count bound is passed (never the last caller:
        it alone holds at most ``max_calls``)."""
        calls = self._calls
        while len(calls) > self.max_numbers or (self.held > self.max_held and len(calls) > 1):
            _, window = calls.popitem(last=False)
            self.held -= len(window.times)
            self.evicted += 1

    def release(self, caller_num: str) -> int:
        """Forget the number's window (a supervisor released it); how many calls it held."""
        window = self._calls.pop(caller_num, None)
        if window is None:
            return 0
        self.held -= len(window.times)
        return len(window.times)

    def tracked_numbers(self) -> int:
        """How many caller numbers have a window now (what :meth:`prune` and ``max_numbers`` bound)."""
        return len(self._calls)

    def prune(self, policy: NuisancePolicy | None, now: float) -> None:
        """Forget the numbers whose last call left the window: they are the front of the LRU order, so this
        costs one look per number forgotten plus one (no scan of the live windows)."""
        horizon = now - (policy.window if policy is not None else 0)
        calls = self._calls
        while calls:
            num, window = next(iter(calls.items()))
            if window.times and window.times[-1] > horizon:
                return  # the rest called later (a clock set back only delays forgetting: the count bounds)
            del calls[num]
            self.held -= len(window.times)


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
