"""How much of the AMI stream may wait in memory, and how much the consumer takes before it yields.

Under a flood (issue 17.5: ~17.7k events/s) the daemon used to read whatever the socket held — libuv reads
up to 32 times per wake-up, megabytes at once — and the consumer then handled all of it in one event-loop
iteration, so ``/healthz`` waited a second and the backlog (events, then the domain events and rows they
make) grew the heap by 150 MB that was never given back. Two rules bound that:

* **Back-pressure, not buffering.** When :data:`HIGH_WATER` events are read and not yet consumed, the
  socket is no longer read (``transport.pause_reading()``): the rest waits in the kernel's socket buffer
  and then at the PBX, which is where TCP puts a reader's slowness. Reading resumes once the consumer has
  brought the queue down to :data:`LOW_WATER`. Nothing is dropped: every event is still handled, in
  order, only later. (Records are what is shed under overload, by the records writer: docs/records.md.)
* **Time slices.** The consumer is handed :data:`CHUNK` events at a time; once it has spent
  :data:`SLICE_S` since its slice began, the event loop runs (HTTP probes, the MQTT pump, the outbox
  flush) before the next slice, so no iteration holds the loop for much more than one slice.

The keepalive Ping's reply queues behind the same backlog, so a reply later than ``ping_timeout`` while
events keep arriving (or reading is paused) does not end the session: only silence does (half-open TCP).

Pure bookkeeping: the client calls :meth:`IngestGate.filled` after adding events and
:meth:`IngestGate.drained` after taking some; the gate calls the session's pause/resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Events read and not consumed at which the socket stops being read (about 2 MB of AMI text).
HIGH_WATER = 4096
#: Reading resumes when the queue is down to this.
LOW_WATER = 1024
#: Events handed to the consumer at a time; after each hand-over the slice's time is looked at.
CHUNK = 64
#: Seconds of consuming after which the event loop gets a turn (the rest of the queue waits for it).
SLICE_S = 0.003


class IngestGate:
    """Pauses and resumes reading of the current AMI session around a bounded queue; counts what it did."""

    __slots__ = ("_clock", "_pause", "_paused_at", "_queued", "_resume", "_slice_end", "arrivals", "consumed",
                 "high_water", "low_water", "max_queued", "paused", "paused_s", "pauses", "received", "slice_s",
                 "slices")

    def __init__(self, high_water: int = HIGH_WATER, low_water: int = LOW_WATER, slice_s: float = SLICE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if not 0 <= low_water < high_water:
            raise ValueError("need 0 <= low_water < high_water")
        self.high_water, self.low_water = high_water, low_water
        self._clock = clock
        self._pause: Callable[[], None] | None = None
        self._resume: Callable[[], None] | None = None
        self.paused = False
        self._paused_at = 0.0
        #: Times reading was paused, seconds spent paused, the largest queue seen (cumulative).
        self.pauses = 0
        self.paused_s = 0.0
        self.max_queued = 0
        #: Hand-overs of read events so far (one per TCP read): the keepalive's proof that data flows.
        self.arrivals = 0
        self.slice_s = slice_s
        self._slice_end = 0.0
        #: Times the consumer gave the event loop a turn with events still waiting.
        self.slices = 0
        #: Items (events and connection items) queued and handed to the consumer so far: from the queue's
        #: length at each :meth:`filled` and :meth:`drained`, so the client's calls say nothing more.
        self.received = 0
        self.consumed = 0
        self._queued = 0

    def begin_slice(self) -> None:
        """The consumer starts (again) with events to take: its slice of time begins now."""
        self._slice_end = self._clock() + self.slice_s

    def slice_spent(self) -> bool:
        """Between two hand-overs while events wait: whether the slice's time is up (the caller then lets
        the event loop run and begins the next slice)."""
        if self._clock() < self._slice_end:
            return False
        self.slices += 1
        return True

    def attach(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """A new session reads: its pause/resume are the ones used from now on (it starts unpaused)."""
        self._end_pause()
        self._pause, self._resume = pause, resume

    def detach(self) -> None:
        """The session ended: nothing to pause any more."""
        self._end_pause()
        self._pause = self._resume = None

    def filled(self, queued: int) -> None:
        """Events were added; ``queued`` are waiting now."""
        self.arrivals += 1
        self.received += max(0, queued - self._queued)
        self._queued = queued
        if queued > self.max_queued:
            self.max_queued = queued
        if queued >= self.high_water and not self.paused and self._pause is not None:
            self.paused = True
            self.pauses += 1
            self._paused_at = self._clock()
            self._pause()

    def drained(self, queued: int) -> None:
        """The consumer took events; ``queued`` are still waiting."""
        self.consumed += max(0, self._queued - queued)
        self._queued = queued
        if self.paused and queued <= self.low_water:
            resume = self._resume
            self._end_pause()
            if resume is not None:
                resume()

    def carrying(self, arrivals_then: int) -> bool:
        """Whether the session carried events since ``arrivals`` was ``arrivals_then`` (or is paused, so
        has more waiting): a Ping reply missing then is late behind them, not lost on a dead path."""
        return self.paused or self.arrivals != arrivals_then

    def _end_pause(self) -> None:
        if self.paused:
            self.paused = False
            self.paused_s += self._clock() - self._paused_at

    def stats(self) -> dict[str, Any]:
        """What ``/readyz`` shows of the AMI intake."""
        paused_s = self.paused_s + (self._clock() - self._paused_at if self.paused else 0.0)
        return {"paused": self.paused, "pauses": self.pauses, "paused_s": round(paused_s, 3),
                "max_queued": self.max_queued, "high_water": self.high_water, "slices": self.slices,
                "received": self.received, "consumed": self.consumed}  # fmt: skip
