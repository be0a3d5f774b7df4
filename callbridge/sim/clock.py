"""Virtual clock and a single heap scheduler (sans-IO).

Every timed thing in the simulator (rings, answers, waits, queue retries, traffic arrivals) is one
entry in one heap, not one asyncio task per call: that is what lets the simulator hold 10,000 calls.
Simulated time runs ``time_scale`` times faster than real time; the asyncio driver in
:mod:`callbridge.sim.simulator` sleeps until the earliest deadline and calls :meth:`Scheduler.run_due`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Timer:
    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Heap of timers keyed by simulated time; ``now`` only moves forward through :meth:`run_due`."""

    __slots__ = ("_heap", "_now", "_seq", "clock", "on_new_deadline")

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._now = 0.0
        # When driven by a real (scaled) clock, "now" follows it between runs so that a delay asked
        # for by an AMI action counts from the moment of the action, not from the last timer.
        self.clock = clock
        # Called when a timer earlier than every other is added (the driver wakes up to re-sleep).
        self.on_new_deadline: Callable[[], None] | None = None

    @property
    def now(self) -> float:
        if self.clock is None:
            return self._now
        return max(self._now, self.clock())

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.call_at(self.now + max(0.0, delay), fn)

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(when, fn)
        earliest = not self._heap or when < self._heap[0][0]
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if earliest and self.on_new_deadline is not None:
            self.on_new_deadline()
        return timer

    def soon(self, fn: Callable[[], None]) -> Timer:
        """Run after everything already due now (keeps event order deterministic)."""
        return self.call_at(self.now, fn)

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float) -> int:
        """Advance to ``now`` and run every timer due by then (in deadline, then insertion order)."""
        ran = 0
        while self._heap and self._heap[0][0] <= now:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.fn()
            ran += 1
        self._now = max(self._now, now)
        return ran

    def advance(self, seconds: float) -> int:
        """Test helper: move simulated time forward synchronously."""
        return self.run_due(self._now + seconds)

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)
