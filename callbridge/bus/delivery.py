"""Keeps the outbox moving: poison messages become dead letters, stalls are measured (no I/O here).

Why a row can block the outbox: the pump publishes in ``seq`` order and restarts from the oldest
unacknowledged row after every reconnect. A message the broker answers with a failure PUBACK is easy (it
is set aside at once), but mosquitto answers a malformed PUBLISH by dropping the connection — and the
same row is at the head again after the reconnect, for ever.

So when the connection drops while rows are in flight, the oldest of them becomes the *suspect*: the
next session sends it alone and waits for its PUBACK before anything else (:attr:`DeliveryGuard.isolating`).
If it is acknowledged, it was innocent (a broker restart, a network cut) and delivery goes on at full
width. If the connection drops again while it is the only row in flight, it gets another strike; after
``strikes`` drops (first one included) it moves to the dead-letter table with the reason, an
``outbox.dead_letter`` alarm is published, and delivery goes on with the row behind it.

Stall: delivery is stalled while the outbox holds rows and no PUBACK arrived for ``stall_bound_s``
(counted from the later of the last PUBACK and the moment the outbox stopped being empty).
``/readyz`` reports not ready while :meth:`DeliveryGuard.stalled` is true.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import structlog

from callbridge.bus.deadletters import DeadLetter
from callbridge.bus.events import OutboxDeadLetter, OutboxFull
from callbridge.bus.outbox import AppendResult, Outbox
from callbridge.domain import DomainEvent

log = structlog.get_logger("callbridge.bus.delivery")

#: MQTT 5 PUBACK / DISCONNECT reason codes worth naming in a dead letter's reason.
REASONS = {
    0x80: "unspecified error",
    0x83: "implementation specific error",
    0x87: "not authorised",
    0x90: "topic name invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
}


def refusal_reason(code: int) -> str:
    return f"broker refused it: reason code 0x{code:02x} ({REASONS.get(code, 'failure')})"


class DeliveryGuard:
    def __init__(
        self,
        outbox: Outbox,
        emit_alarm: Callable[[DomainEvent], None],
        *,
        strikes: int = 3,
        stall_bound_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self._emit_alarm = emit_alarm
        self.strikes_to_dead = max(1, strikes)
        self.stall_bound_s = stall_bound_s
        self._clock = clock
        self._wall = wall_clock
        #: the oldest row in flight when the connection last dropped, and how many drops it saw
        self.suspect: int | None = None
        self.strikes = 0
        self.dead_lettered = 0
        self._progress_at = clock()
        self._last_drop_log = 0.0

    # --- poison rows ------------------------------------------------------------------------

    @property
    def isolating(self) -> bool:
        """Send the suspect alone until its PUBACK arrives."""
        return self.suspect is not None

    def acknowledged(self, seqs: Sequence[int]) -> None:
        """PUBACKs arrived (called once per run of PUBACKs): progress, and a suspect cleared."""
        self._progress_at = self._clock()
        if self.suspect is not None and self.suspect in seqs:
            self.suspect, self.strikes = None, 0

    def not_the_suspect(self, head: int) -> bool:
        """While isolating, the oldest row to send is not the suspect (it is gone): stop isolating."""
        if self.suspect is None or head == self.suspect:
            return False
        self.suspect, self.strikes = None, 0
        return True

    def connection_dropped(self, in_flight: Iterable[int], error: str) -> DeadLetter | None:
        """The session ended without a stop; ``in_flight`` are the seqs sent and not acknowledged."""
        head = min(in_flight, default=None)
        if head is None:
            return None
        if head == self.suspect:
            self.strikes += 1
        else:
            self.suspect, self.strikes = head, 1
        log.warning("outbox.suspect", seq=head, strikes=self.strikes, of=self.strikes_to_dead, error=error)
        if self.strikes < self.strikes_to_dead:
            return None
        self.suspect, self.strikes = None, 0
        reason = f"the broker dropped the connection {self.strikes_to_dead} times with it the oldest in flight"
        return self.dead_letter(head, f"{reason} ({error})" if error else reason)

    def dead_letter(self, seq: int, reason: str) -> DeadLetter | None:
        """Set row ``seq`` aside and publish the alarm; None when the row is gone already."""
        letter = self.outbox.dead_letter(seq, reason, self._wall())
        if letter is None:
            return None
        self.dead_lettered += 1
        self._progress_at = self._clock()  # the head moved: delivery is going on
        summary = letter.summary()
        log.error("outbox.dead_letter", **summary)
        self._emit_alarm(OutboxDeadLetter(ts=letter.at, letter_id=letter.id, seq=letter.seq,
                                          topic=str(summary["topic"]), reason=reason,
                                          dead_letters=self.outbox.dead_letters))  # fmt: skip
        return letter

    # --- the size bound -----------------------------------------------------------------------

    def rows_dropped(self, result: AppendResult) -> None:
        """The outbox bound dropped rows: an ``outbox.full`` alarm once per episode, a warning every 10 s."""
        now = self._clock()
        box = self.outbox
        if result.became_full:
            log.error("outbox full: dropping the oldest rows (state first, then events)", max_rows=box.max_rows,
                      dropped_state=box.dropped_state, dropped_events=box.dropped_events)  # fmt: skip
            alarm = OutboxFull(ts=self._wall(), depth=result.depth, max_rows=box.max_rows,
                               dropped_state=box.dropped_state, dropped_events=box.dropped_events)  # fmt: skip
            self._emit_alarm(alarm)
            self._last_drop_log = now
        elif now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.warning("outbox still full", dropped_state=box.dropped_state, dropped_events=box.dropped_events)

    # --- stalls -----------------------------------------------------------------------------

    def work_arrived(self) -> None:
        """The outbox was empty and got rows: the stall clock starts now, not at the last PUBACK."""
        self._progress_at = self._clock()

    def stalled_for(self) -> float:
        """Seconds without a PUBACK while rows wait (0 with an empty outbox)."""
        if self.outbox.depth == 0:
            return 0.0
        return max(0.0, self._clock() - self._progress_at)

    def stalled(self) -> bool:
        return self.stalled_for() > self.stall_bound_s
