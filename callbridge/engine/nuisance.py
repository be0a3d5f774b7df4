"""Nuisance callers (滋扰治理): a sliding window of calls per caller number across all hotlines."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from callbridge.dialplan.model import NuisancePolicy


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

    def prune(self, policy: NuisancePolicy | None, now: float) -> None:
        """Forget numbers whose window is empty (bounded memory)."""
        horizon = now - (policy.window if policy is not None else 0)
        for num in [n for n, w in self._calls.items() if not w or w[-1][0] <= horizon]:
            del self._calls[num]
