"""Overflow to remote seats (远程座席): thresholds with hysteresis over the queue state.

Start when free agents <= ``start.free_agents_at_most`` AND (waiting >= ``start.waiting_calls`` OR
longest wait >= ``start.longest_wait``); stop only when waiting <= ``recover.waiting_calls`` AND longest
wait <= ``recover.longest_wait`` — two different thresholds, so a queue at the edge does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from callbridge.dialplan.model import Overflow


@dataclass(frozen=True, slots=True)
class QueueStats:
    waiting: int
    longest_wait_s: float
    free_agents: int
    callers: tuple[str, ...] = ()  # waiting callers' channels, in queue order


@dataclass(frozen=True, slots=True)
class OverflowDecision:
    overflow: Overflow
    change: Literal["start", "stop"]
    reason: str
    stats: QueueStats


def start_reason(of: Overflow, s: QueueStats) -> str | None:
    if s.free_agents > of.start.free_agents_at_most:
        return None
    if of.start.waiting_calls is not None and s.waiting >= of.start.waiting_calls:
        return "waiting"
    if of.start.longest_wait is not None and s.longest_wait_s >= of.start.longest_wait:
        return "longest_wait"
    return None


def recovered(of: Overflow, s: QueueStats) -> bool:
    if s.waiting > of.recover.waiting_calls:
        return False
    return of.recover.longest_wait is None or s.longest_wait_s <= of.recover.longest_wait


@dataclass(slots=True)
class OverflowWatch:
    active: dict[str, Overflow] = field(default_factory=dict)  # overflow id → the rule it started with

    def evaluate(self, rules: tuple[Overflow, ...], stats: dict[str, QueueStats]) -> list[OverflowDecision]:
        out: list[OverflowDecision] = []
        current = {of.id: of for of in rules}
        for of_id, of in list(self.active.items()):
            s = stats.get(of.queue, QueueStats(0, 0.0, 0))
            if of_id not in current:  # the mode or the dialplan no longer has it: back to normal
                del self.active[of_id]
                out.append(OverflowDecision(of, "stop", "rule_inactive", s))
            elif recovered(of, s):
                del self.active[of_id]
                out.append(OverflowDecision(of, "stop", "recovered", s))
        for of in rules:
            if of.id in self.active:
                continue
            s = stats.get(of.queue, QueueStats(0, 0.0, 0))
            reason = start_reason(of, s)
            if reason is not None:
                self.active[of.id] = of
                out.append(OverflowDecision(of, "start", reason, s))
        return out

    def withdraw_candidates(self, of: Overflow, s: QueueStats) -> tuple[str, ...]:
        """Waiting callers beyond what the recover threshold keeps local (the newest go remote)."""
        keep = of.recover.waiting_calls
        return s.callers[keep:]
