"""One event sink for the composition root: record every event, update the live board, pass on alarms.

``EngineService`` hands each batch of domain events to its sinks synchronously; this sink queues them
for the records (never blocking), feeds the board, and hands the alarms the board raises
(``kpi.answer_rate_low``) to ``publish`` (e.g. the MQTT publisher) — those alarms are recorded too.
``on_change`` is called once per batch (the web server's ``notify`` pushes the wallboard at once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from callbridge.domain import DomainEvent
from callbridge.store.events import RecordsBacklog
from callbridge.store.live import LiveBoard
from callbridge.store.writer import RecordWriter

Publish = Callable[[Sequence[DomainEvent]], object]


class RecordsSink:
    def __init__(
        self,
        writer: RecordWriter,
        board: LiveBoard,
        *,
        publish: Publish | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.writer = writer
        self.board = board
        self.publish = publish
        self.on_change = on_change

    def __call__(self, events: Sequence[DomainEvent]) -> None:
        alarms: list[DomainEvent] = []
        for event in events:
            self.writer.submit(event)
            alarms += self.board.feed(event)
        for alarm in alarms:
            self.writer.submit(alarm)
        if alarms and self.publish is not None:
            self.publish(alarms)
        if self.on_change is not None:
            self.on_change()

    def backlog_alarm(self, alarm: RecordsBacklog) -> None:
        """Use as ``RecordWriter(on_alarm=sink.backlog_alarm)``: show it on the board and publish it.

        It is not written to the records — the records queue is exactly what is full.
        """
        self.board.feed(alarm)
        if self.publish is not None:
            self.publish([alarm])
        if self.on_change is not None:
            self.on_change()
