"""The broker killed with ``kill -9`` while events flow and a persistent-session QoS 1 subscriber is offline
too (issue 17.7): the scenario of ``tests/bus/test_bus_broker_crash.py`` and of the fault benchmark
(``bench/faults.py``). :func:`kill9_outage` runs it and returns its figures; the caller judges them.

It lives in bus/ because its desk is an MQTT client (aiomqtt, paho properties), and bus/ is the one
adapter that may import them (tests/test_boundaries.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.bus.publisher import Publisher
from callbridge.bus.publisher_mqtt import consume_disconnect_error
from callbridge.domain import DomainEvent
from callbridge.testing.mosquitto import Mosquitto

EVENTS = "callbridge/lab/events/#"
USERS = {"pub": "pub-pass", "desk": "desk-pass"}
#: events ``start`` .. ``start + size - 1`` (each carries its number, so a loss is named)
Batch = Callable[[int, int], Sequence[DomainEvent]]


def persistent_broker(workdir: Path) -> Mosquitto:
    """mosquitto with its on-disk store written after every change.

    Without ``autosave_on_changes`` mosquitto writes its database only every 30 minutes and at a graceful
    stop, so a SIGKILL would take every queued message with it: that is the broker's own durability
    setting, which a deployment that promises "nothing lost" must turn on.
    """
    store = workdir / "store"
    store.mkdir(parents=True)
    extra = "\n".join(
        ["persistence true", f"persistence_location {store}/", "autosave_interval 1", "autosave_on_changes true"]
    )
    return Mosquitto(workdir, users=USERS, extra_config=extra)


class DeskLog:
    """Every envelope the desk received, across its sessions (copies included)."""

    def __init__(self) -> None:
        self.copies: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def distinct(self) -> int:
        return len({c["id"] for c in self.copies})

    async def wait_for(self, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while self.distinct() < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def desk_session(broker: Mosquitto, desk: DeskLog, *, subscribe: bool) -> AsyncIterator[None]:
    """The desk's MQTT 5 session (fixed client id, clean_start false, 1 h session expiry). Without
    ``subscribe`` it receives only if the broker kept the session and its subscription."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho is untyped here
    props.SessionExpiryInterval = 3600
    client = aiomqtt.Client(
        broker.host, broker.port, username="desk", password=USERS["desk"], identifier="desk-1",
        protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props, timeout=10,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(10):
            await stack.enter_async_context(client)
        consume_disconnect_error(client)
        if subscribe:
            await client.subscribe(EVENTS, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                desk.copies.append(orjson.loads(payload))
                desk.changed.set()

        task = asyncio.create_task(pump())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def kill9_outage(broker: Mosquitto, pub: Publisher, desk: DeskLog, batch: Batch, *, outage_s: float,
                       tick_s: float = 0.5) -> dict[str, Any]:  # fmt: skip
    """The desk receives a first part live, goes offline (the broker queues for its session); the broker is
    frozen with a batch in flight and SIGKILLed; for ``outage_s`` events keep coming into the outbox; the
    broker restarts from its store, the outbox drains, the desk returns to its old session. ``pub`` runs
    (connected) on ``broker``. Returns the figures: produced, live, in_flight (the numbers of the batch in
    flight at the kill), in_flight_at_kill, outbox_while_down, reconnections."""
    produced = 0
    async with desk_session(broker, desk, subscribe=True):
        await pub.publish_events(batch(produced, 200))
        produced += 200
        await desk.wait_for(200, within=10)
    live = desk.distinct()  # the desk disconnected; its session and subscription stay on the broker
    for _ in range(10):  # the desk is offline: the broker queues these for its session
        await pub.publish_events(batch(produced, 40))
        produced += 40
    async with asyncio.timeout(10):
        await pub.wait_drained()
    await asyncio.sleep(1.5)  # autosave_on_changes writes at the next pass of its loop
    broker.pause()
    in_flight = set(range(produced, produced + 50))
    await pub.publish_events(batch(produced, 50))
    produced += 50
    await asyncio.sleep(0.1)  # the pump writes them into the frozen broker's socket
    in_flight_at_kill = pub.outbox_depth
    broker.stop(kill=True)
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < outage_s:  # broker and desk both gone: events keep coming
        await pub.publish_events(batch(produced, 10))
        produced += 10
        await asyncio.sleep(tick_s)
    depth_while_down = pub.outbox_depth
    broker.start()  # same port, same store
    async with asyncio.timeout(30):
        await pub.wait_drained()
    return {"produced": produced, "live": live, "in_flight": in_flight, "in_flight_at_kill": in_flight_at_kill,
            "outbox_while_down": depth_while_down, "reconnections": pub.connections}


async def desk_returns(broker: Mosquitto, desk: DeskLog, produced: int, within: float = 30.0) -> None:
    """The desk's old session again (no new SUBSCRIBE); waits for ``produced`` distinct events or ``within``."""
    async with desk_session(broker, desk, subscribe=False):
        with contextlib.suppress(TimeoutError):  # a loss is the caller's to report, with what was lost
            await desk.wait_for(produced, within=within)
        await asyncio.sleep(0.5)  # any late duplicate arrives too
