"""Publishes domain events and retained state to MQTT through the durable outbox.

``publish_events`` writes the envelopes to the outbox (one all-or-nothing batch) and returns; every
append of one event-loop iteration shares one SQLite commit, made at the end of the iteration and in
any case before a row is read for publishing (a commit costs far more than its rows: on a loaded
2-core VM one commit took 100-300 µs). Each domain event is encoded once; its topics share the bytes.
A pump reads the outbox in ``seq`` order and keeps up to ``pipelined_in_flight`` QoS 1 publishes
awaiting their PUBACK (never more than the broker's MQTT 5 Receive Maximum) through
:class:`~callbridge.bus.fastpath.PahoPipeline` (whole batches of PUBLISH packets in one write, runs of
PUBACKs consumed in one loop). The window is wide because PUBACKs are read once per event-loop
iteration: while the AMI side keeps the loop busy (tens of ms per iteration under load), a window of
64 capped the publisher at 64 messages per iteration. When paho's internals are not the expected
ones it falls back to one aiomqtt ``publish`` task per message (``in_flight`` of them). A row is
deleted only after its PUBACK; deletions are batched (they ride along with the next append, or go
after ``ACK_FLUSH_DELAY_S``). QoS 1 messages of one connection arrive in publish order, and after a
reconnect the pump starts again from the oldest unacknowledged row, so the events of one call keep
their order (with duplicates a subscriber removes by envelope id). A PUBACK with an MQTT 5 failure
reason code (e.g. not authorised) moves the row to the dead letters (:mod:`callbridge.bus.delivery`:
so does a row the broker keeps dropping the connection for); it is counted (:attr:`Publisher.refused`).

The connection loop (:func:`~callbridge.bus.publisher_mqtt.reconnect_forever`, shared with the command
server, as is the client's construction) never gives up. The retained status topic says ``online`` after
each connect and ``offline`` on a graceful stop; the MQTT last will says ``offline`` when the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiomqtt
import structlog
from pydantic import BaseModel

from callbridge.bus.config import BusSettings
from callbridge.bus.delivery import DeliveryGuard, refusal_reason
from callbridge.bus.envelope import build, payload
from callbridge.bus.fastpath import TOPIC_INVALID, ConnackLimits, PahoPipeline, topic_field
from callbridge.bus.outbox import AppendResult, Outbox, OutboxRow, OutgoingMessage
from callbridge.bus.publisher_mqtt import consume_disconnect_error, make_client, reconnect_forever
from callbridge.bus.state import OFFLINE, ONLINE, state_message
from callbridge.bus.topics import Topics
from callbridge.domain import DomainEvent

log = structlog.get_logger("callbridge.bus")

#: Acknowledged rows are deleted at most this long after their PUBACK (unless an append took them).
ACK_FLUSH_DELAY_S = 0.005
ACK_FLUSH_ROWS = 1024
#: How often dead letters marked for a retry are looked for while connected (seconds).
RETRY_POLL_S = 2.0


class Publisher:
    """Outbox → MQTT. Run :meth:`run` as a task; feed it with :meth:`publish_events` / :meth:`set_state`."""

    def __init__(
        self,
        settings: BusSettings,
        outbox: Outbox | None = None,
        *,
        topics: Topics | None = None,
        on_connection_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics or Topics(settings.site)
        self.outbox = outbox or Outbox(settings.outbox_path, max_rows=settings.outbox_max_rows)
        self._on_connection_change = on_connection_change
        self._wakeup = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._drain_deadline = math.inf
        self._acked: list[int] = []
        self._ack_flush_scheduled = False
        self._commit_scheduled = False
        #: PUBACKs with a failure reason code (MQTT 5, e.g. not authorised); the row is not retried.
        self.refused = 0
        self.connected = False
        #: Publishes kept in flight on the fast path in this session (after the broker's Receive Maximum).
        self.window: int | None = None
        self.attempts = 0
        self.connections = 0
        self.last_error: str | None = None
        self.delivery = DeliveryGuard(self.outbox, self._append_alarm, strikes=settings.dead_letter_strikes,
                                      stall_bound_s=settings.delivery_stall_s)  # fmt: skip
        self._pipe: PahoPipeline | None = None  # this session's fast path (its in-flight rows)
        self._sending: set[int] = set()  # the fallback path's rows in flight

    # --- what the rest of the daemon calls ---------------------------------------------------

    @property
    def outbox_depth(self) -> int:
        """Messages written to the outbox and not yet acknowledged by the broker."""
        return self.outbox.depth

    def publish_events_nowait(self, events: Sequence[DomainEvent]) -> AppendResult:
        """Encode ``events`` and store them in the outbox (one transaction); the pump publishes them."""
        # One envelope per event, shared by all its topics (the same bytes, so the same id everywhere).
        site, next_seq, topics_of = self.settings.site, self.outbox.next_event_seq, self.topics.for_event
        messages: list[tuple[str, bytes]] = []
        add = messages.append
        for event in events:
            body = payload(event, site=site, seq=next_seq())
            for topic in topics_of(event):
                add((topic, body))
        return self._append(messages, events_only=True)

    async def publish_events(self, events: Sequence[DomainEvent]) -> AppendResult:
        # Deliberately synchronous inside: see outbox.py on why SQLite runs on the loop thread.
        return self.publish_events_nowait(events)

    def set_state_nowait(self, suffix: str, payload: BaseModel | Mapping[str, Any] | bytes) -> AppendResult:
        """Retained state on ``state/<suffix>`` (e.g. ``hotlines/110``), coalesced while unpublished."""
        return self._append([state_message(self.topics, suffix, payload)])

    async def set_state(self, suffix: str, payload: BaseModel | Mapping[str, Any] | bytes) -> AppendResult:
        return self.set_state_nowait(suffix, payload)

    def delivery_state(self) -> dict[str, Any]:
        """What ``/readyz`` reports of delivery (``stalled``: rows waiting with no PUBACK for too long)."""
        return {"stalled": self.delivery.stalled(), "stalled_s": round(self.delivery.stalled_for(), 1),
                "stall_bound_s": self.delivery.stall_bound_s, "outbox_depth": self.outbox.depth,
                "dead_letters": self.delivery.dead_lettered}  # fmt: skip

    async def wait_connected(self) -> None:
        """Until connected (wrap in ``asyncio.timeout``)."""
        await self._connected_event.wait()

    async def wait_drained(self) -> None:
        """Until every outbox row has been acknowledged (wrap in ``asyncio.timeout``)."""
        if self.outbox.depth > 0:
            self._drained.clear()
        await self._drained.wait()

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Ask :meth:`run` to publish what it can within ``drain_timeout``, say ``offline`` and return."""
        self._drain_deadline = time.monotonic() + drain_timeout
        self._stopping.set()
        self._wakeup.set()

    # --- outbox -----------------------------------------------------------------------------

    def _append(self, messages: Sequence[Any], *, events_only: bool = False) -> AppendResult:
        """``messages``: OutgoingMessage, or (topic, payload) pairs of events with ``events_only``."""
        acked, self._acked = self._acked, []
        was_empty = self.outbox.depth == 0
        try:
            # Acknowledged rows ride along; the commit is shared by every append of this loop
            # iteration (and always precedes publishing, since the pump's read commits first).
            if events_only:
                result = self.outbox.append_events(messages, acked=acked, commit=False)
            else:
                result = self.outbox.append(messages, acked=acked, commit=False)
        except BaseException:
            self._acked[:0] = acked
            raise
        self._schedule_commit()
        if was_empty and result.depth:
            self.delivery.work_arrived()
        if result.dropped_state or result.dropped_events:
            self.delivery.rows_dropped(result)
        if result.depth > 0:
            self._drained.clear()
        self._wakeup.set()
        return result

    def _schedule_commit(self) -> None:
        if self._commit_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: no iteration to wait for
            self.outbox.commit()
            return
        self._commit_scheduled = True
        loop.call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_scheduled = False
        self.outbox.commit()

    def _append_alarm(self, alarm: DomainEvent) -> None:
        """An alarm event straight into the outbox (over the bound rather than push out one more event)."""
        envelope = build(alarm, site=self.settings.site, seq=self.outbox.next_event_seq())
        self.outbox.append(
            [OutgoingMessage(t, envelope.payload, kind="alarm") for t in self.topics.for_event(alarm)],
            enforce_bound=False,
            commit=False,
        )
        self._schedule_commit()
        self._drained.clear()
        self._wakeup.set()

    def _note_acked(self, seqs: list[int]) -> None:
        # A commit costs far more than the rows it deletes: acknowledged seqs wait up to
        # ACK_FLUSH_DELAY_S (or ACK_FLUSH_ROWS of them) and usually ride along with the next append.
        # A crash in between only means duplicates after the restart (at-least-once, same ids).
        self._acked.extend(seqs)
        self.delivery.acknowledged(seqs)
        if len(self._acked) >= ACK_FLUSH_ROWS:
            self._flush_acks()
        elif not self._ack_flush_scheduled:
            self._ack_flush_scheduled = True
            asyncio.get_running_loop().call_later(ACK_FLUSH_DELAY_S, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_flush_scheduled = False  # a still-pending timer then finds nothing to do
        if self._acked:
            acked, self._acked = self._acked, []
            self.outbox.ack(acked)
        if self.outbox.depth == 0:
            self._drained.set()

    # --- connection loop --------------------------------------------------------------------

    def _set_connected(self, value: bool) -> None:
        if value == self.connected:
            return
        self.connected = value
        if value:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        if self._on_connection_change is not None:
            self._on_connection_change(value)

    async def run(self) -> None:
        """Connect, publish, reconnect — until :meth:`stop` (or cancellation)."""
        await reconnect_forever(self.settings, self._stopping, self._connect_once, role="publisher",
                                on_failure=self._connection_failed)  # fmt: skip
        self._flush_acks()

    async def _connect_once(self, attempt: int, connected: Callable[[], None]) -> None:
        self.attempts = attempt
        s = self.settings
        will = aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True)
        client = make_client(s, client_id=s.resolved_client_id(), will=will)
        limits = ConnackLimits(client) if PahoPipeline.supported(client) else None
        self._pipe = None
        try:
            async with client:
                self.connections += 1
                self.last_error = None
                connected()
                await self._session(client, limits)
        finally:
            self._set_connected(False)

    def _connection_failed(self, error: str) -> None:
        self.last_error = error
        log.warning("mqtt connection failed or lost", attempt=self.attempts, error=error)
        if not self._stopping.is_set():
            in_flight = self._pipe.unacknowledged() if self._pipe is not None else sorted(self._sending)
            self.delivery.connection_dropped(in_flight, error)

    async def _session(self, client: aiomqtt.Client, limits: ConnackLimits | None) -> None:
        consume_disconnect_error(client)
        self.window = None if limits is None else limits.window(self.settings.pipelined_in_flight)
        await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        self._set_connected(True)  # ready: connected and announced
        log.info("mqtt connected", attempt=self.attempts, outbox_depth=self.outbox.depth)
        self._flush_acks()
        self._sending.clear()
        try:
            async with asyncio.TaskGroup() as tg:
                watcher = tg.create_task(self._watch_disconnect(client))
                retries = tg.create_task(self._take_retries())
                if self.window is not None:
                    self._pipe = PahoPipeline(client, self._on_acks)
                    await self._pump_pipelined(self._pipe, self.window)
                else:
                    await self._pump_with_tasks(client, tg)
                watcher.cancel()
                retries.cancel()
            self._flush_acks()
            await client.publish(self.topics.status, OFFLINE, qos=1, retain=True, timeout=2)
        except asyncio.CancelledError:
            # Cancelled without stop(): the clean DISCONNECT suppresses the will, so say it ourselves.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(self.topics.status, OFFLINE, qos=1, retain=True), 1.0)
            raise

    @staticmethod
    async def _watch_disconnect(client: aiomqtt.Client) -> None:
        # aiomqtt's message iterator raises MqttError when the connection drops; a pending publish
        # would otherwise wait for a PUBACK that will never come.
        async for _ in client.messages:
            pass

    def _should_stop_pumping(self) -> bool:
        # Stopping: publish what we can until the drain deadline, then abandon what is in flight
        # (its rows stay in the outbox and go out after the next start).
        return self._stopping.is_set() and (self.outbox.depth == 0 or time.monotonic() >= self._drain_deadline)

    async def _take_retries(self) -> None:
        """Dead letters marked for a retry (``callbridge deadletters retry``) return to the outbox."""
        while True:
            if self.outbox.requeue_retried():
                self._drained.clear()
                self._wakeup.set()
            await asyncio.sleep(RETRY_POLL_S)

    def _on_acks(self, acked: list[int], refused: list[tuple[int, int]]) -> None:
        """PUBACKs of one read (fast path); a refused row becomes a dead letter."""
        if refused:
            # The broker refused the message (MQTT 5 reason code, e.g. 0x87 not authorised) or it could
            # not be sent at all: retrying would block the outbox forever, so it is set aside.
            self.refused += len(refused)
            for seq, code in refused:
                self.delivery.dead_letter(seq, refusal_reason(code))
        if acked:
            self._note_acked(acked)
        self._wakeup.set()

    async def _pump_pipelined(self, pipe: PahoPipeline, window: int) -> None:
        """Keep up to ``window`` rows unacknowledged, sending whatever fits in one batch per wake-up."""
        pipe.attach()
        after = 0  # a new connection starts again from the oldest unacknowledged row
        while not self._should_stop_pumping():
            # No await between here and the wait below: nothing can set the event unseen.
            self._wakeup.clear()
            # a suspect row goes alone: its PUBACK (or another drop) says whether it is the poison
            room = (1 if self.delivery.isolating else window) - pipe.in_flight
            # Refill as soon as anything is free: PUBACKs read together make one batch anyway, and
            # holding back stalls on brokers without TCP_NODELAY (mosquitto's default): their next
            # PUBACKs wait for our TCP ACK, which rides on our next data or comes 40 ms late.
            if room > 0:
                rows = self.outbox.pending(after, room)
                if rows and self.delivery.not_the_suspect(rows[0].seq):
                    continue  # the suspect is gone (acknowledged late, dropped by the bound): full width
                if rows:
                    pipe.send(rows)
                    after = rows[-1].seq
                    continue
            if self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 0.01)
            else:
                await self._wakeup.wait()

    async def _pump_with_tasks(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        """Fallback when paho's internals are not what :mod:`fastpath` expects: one task per publish."""
        in_flight: set[asyncio.Task[None]] = set()
        await self._pump(client, tg, in_flight)
        if in_flight:
            grace = max(0.0, self._drain_deadline - time.monotonic())
            _, late = await asyncio.wait(in_flight, timeout=grace)
            for task in late:
                task.cancel()

    async def _pump(self, client: aiomqtt.Client, tg: asyncio.TaskGroup, in_flight: set[asyncio.Task[None]]) -> None:
        window = asyncio.Semaphore(self.settings.in_flight)
        batch = self.settings.in_flight * 4
        after = 0  # a new connection starts again from the oldest unacknowledged row
        while True:
            if self._stopping.is_set() and (self.outbox.depth == 0 or time.monotonic() >= self._drain_deadline):
                return
            rows = self.outbox.pending(after, batch)
            if not rows:
                self._wakeup.clear()
                rows = self.outbox.pending(after, batch)  # re-check: an append may have raced the clear
                if not rows:
                    if self._stopping.is_set():
                        await asyncio.sleep(0.01)  # draining: wait for the in-flight PUBACKs
                    else:
                        await self._wakeup.wait()
                    continue
            if self.delivery.not_the_suspect(rows[0].seq):
                continue
            for row in rows:
                await window.acquire()
                try:
                    topic_field(row.topic)
                except ValueError:
                    window.release()
                    self._on_acks([], [(row.seq, TOPIC_INVALID)])
                    after = row.seq
                    continue
                task = tg.create_task(self._publish_row(client, row, window))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                after = row.seq
                if self.delivery.isolating:  # a suspect row goes alone (see delivery.py)
                    await asyncio.wait({task})
                    break

    async def _publish_row(self, client: aiomqtt.Client, row: OutboxRow, window: asyncio.Semaphore) -> None:
        self._sending.add(row.seq)
        try:
            await client.publish(row.topic, row.payload, qos=1, retain=row.retain, timeout=math.inf)
        finally:
            window.release()
        self._sending.discard(row.seq)
        self._note_acked([row.seq])
