"""Writing records without ever blocking call control.

``submit()`` is synchronous and O(1): it puts the event on a bounded :class:`asyncio.Queue` and returns.
A single task drains the queue in batches and writes each batch in a worker thread
(``asyncio.to_thread``), so a slow disk or a far PostgreSQL never stalls the event loop.

Overload policy: when the queue is at its bound, the *new* event is dropped (the start of each call's
timeline is kept), the drop is counted, and one alarm is raised — a warning log and a
:class:`~callbridge.store.events.RecordsBacklog` event handed to ``on_alarm`` (the app publishes it). The
alarm re-arms once the queue has drained below half its bound. A batch that fails is retried with
back-off; after ``retries`` attempts its events are written one by one and the ones that still fail are
dropped (counted in ``failed``), so one bad event cannot stop the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType

from callbridge.domain import DomainEvent
from callbridge.store.events import RecordsBacklog
from callbridge.store.record import EventRecord
from callbridge.store.records import RecordStore

log = logging.getLogger(__name__)


class RecordWriter:
    def __init__(
        self,
        store: RecordStore,
        *,
        bound: int = 10_000,
        batch_size: int = 500,
        retries: int = 3,
        retry_delay: float = 0.5,
        on_alarm: Callable[[RecordsBacklog], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bound < 1 or batch_size < 1:
            raise ValueError("bound and batch_size must be positive")
        self.store = store
        self.bound = bound
        self.batch_size = batch_size
        self.retries = retries
        self.retry_delay = retry_delay
        self.on_alarm = on_alarm
        self.clock = clock
        self._queue: asyncio.Queue[EventRecord] = asyncio.Queue(maxsize=bound)
        self._alarmed = False
        self._task: asyncio.Task[None] | None = None
        self.written = 0  # events written (process lifetime)
        self.dropped = 0  # events refused because the queue was full
        self.failed = 0  # events the database refused even one by one
        self.alarms = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def alarmed(self) -> bool:
        return self._alarmed

    def submit(self, event: DomainEvent | EventRecord) -> bool:
        """Queue an event for the records; never blocks. False when it was dropped (queue full)."""
        try:
            self._queue.put_nowait(EventRecord.of(event))
        except asyncio.QueueFull:
            self.dropped += 1
            if not self._alarmed:
                self._raise_alarm()
            return False
        return True

    def _raise_alarm(self) -> None:
        self._alarmed = True
        self.alarms += 1
        log.warning("records queue full (bound %d): dropping events from the records until it drains", self.bound)
        if self.on_alarm is not None:
            alarm = RecordsBacklog(ts=self.clock(), depth=self.depth, bound=self.bound, dropped=self.dropped)
            try:
                self.on_alarm(alarm)
            except Exception:  # the alarm hook must never break the caller of submit()
                log.exception("records alarm callback failed")

    async def run(self) -> None:
        """Drain the queue forever (run it as a task; :meth:`aclose` stops it after a flush)."""
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if self._alarmed and self.depth < self.bound // 2:
                self._alarmed = False
                log.warning(
                    "records queue drained (%d waiting); %d events were dropped so far", self.depth, self.dropped
                )

    async def _write(self, batch: list[EventRecord]) -> None:
        delay = self.retry_delay
        for attempt in range(1, self.retries + 1):
            try:
                self.written += await asyncio.to_thread(self.store.write, batch)
                return
            except Exception:
                log.exception("records batch of %d failed (attempt %d/%d)", len(batch), attempt, self.retries)
                if attempt < self.retries:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
        for rec in batch:  # isolate the event(s) the database refuses
            try:
                self.written += await asyncio.to_thread(self.store.write, [rec])
            except Exception:
                self.failed += 1
                log.exception("records: dropped event %s of call %s", rec.type, rec.call_id)

    async def flush(self) -> None:
        """Wait until every event submitted so far is written (or given up)."""
        await self._queue.join()

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="records-writer")
        return self._task

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Flush (up to ``drain_s`` seconds), then stop the drain task."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), drain_s)
        except TimeoutError:
            log.warning("records: %d events not written at shutdown", self.depth)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def __aenter__(self) -> RecordWriter:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
