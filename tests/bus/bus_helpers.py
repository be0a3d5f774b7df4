"""Test-only domain events (unique TYPEs under ``test.``; never documented in asyncapi)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from callbridge.domain import DomainEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(DomainEvent):
    TYPE: ClassVar[str] = "test.ping"
    n: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HandOver(DomainEvent):
    """Like transfer.requested: concerns the sending hotline and the destination."""

    TYPE: ClassVar[str] = "test.handover"
    to_hotline: str
    caller_num: str
    summary: str = ""

    def also_hotlines(self) -> tuple[str, ...]:
        return (self.to_hotline,)


# --- MQTT test helpers ---------------------------------------------------------------------------

import asyncio  # noqa: E402
import contextlib  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from typing import Any  # noqa: E402

import aiomqtt  # noqa: E402
import orjson  # noqa: E402

from callbridge.bus.config import BusSettings  # noqa: E402
from callbridge.bus.publisher import Publisher  # noqa: E402
from callbridge.bus.publisher_mqtt import consume_disconnect_error  # noqa: E402
from callbridge.testing.mosquitto import Mosquitto  # noqa: E402


def settings_for(broker: Mosquitto, tmp_path: Any, **overrides: Any) -> BusSettings:
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "site": "lab",
        "outbox_path": tmp_path / "outbox.sqlite3",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        "keepalive": 5,
    }
    values.update(overrides)
    return BusSettings(**values)


@contextlib.asynccontextmanager
async def running(publisher: Publisher, *, connect: bool = True) -> AsyncIterator[Publisher]:
    task = asyncio.create_task(publisher.run())
    try:
        if connect:
            async with asyncio.timeout(10):
                await publisher.wait_connected()
        yield publisher
    finally:
        publisher.stop(drain_timeout=0.5)
        try:
            async with asyncio.timeout(10):
                await task
        finally:
            task.cancel()
            publisher.outbox.close()


class Collector:
    """A subscriber that records (topic, payload, retain) and can wait for a count or a predicate."""

    def __init__(self, ids: set[str] | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        #: envelope ids seen (may be shared by several collectors: a subscriber across reconnects)
        self.ids: set[str] = set() if ids is None else ids
        self._changed = asyncio.Event()
        #: set when the subscriber's connection ended and everything it had received was recorded
        self.closed = asyncio.Event()

    def add(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.messages.append((message.topic.value, payload, message.retain))
        if payload.startswith(b"{"):
            event_id = orjson.loads(payload).get("id")
            if isinstance(event_id, str):
                self.ids.add(event_id)
        self._changed.set()

    def envelopes(self, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [(t, orjson.loads(p)) for t, p, _ in self.messages if t.startswith(prefix) and p.startswith(b"{")]

    async def wait_until(self, predicate: Any, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def subscribed(
    broker: Mosquitto,
    *filters: str,
    username: str | None = None,
    password: str | None = None,
    v5: bool = True,
    ids: set[str] | None = None,
) -> AsyncIterator[tuple[aiomqtt.Client, Collector]]:
    collector = Collector(ids)
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=username,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        timeout=10,
    )
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(10):
            await stack.enter_async_context(client)
            consume_disconnect_error(client)
            for f in filters:
                await client.subscribe(f, qos=1)

        async def pump() -> None:
            try:
                async for message in client.messages:
                    collector.add(message)
            except aiomqtt.MqttError:
                # aiomqtt stops iterating as soon as it sees the disconnect, even with messages still
                # queued; a subscriber that wants everything drains them (private queue, test only).
                queue = client._queue
                while not queue.empty():
                    collector.add(queue.get_nowait())
            finally:
                collector.closed.set()

        task = asyncio.create_task(pump())
        try:
            yield client, collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
