"""One subscribing MQTT connection that reconnects forever: the command server's and the two-centre link's.

``Subscription(settings, client_id=…, role=…, topics=[…], handle=…)`` connects (the shared
:func:`~callbridge.bus.publisher_mqtt.make_client`, optionally with a persistent session), subscribes to
every topic at QoS 1 on each connection, then hands each message to ``handle(client, message)`` in arrival
order — one at a time, so two messages about one call never race — until :meth:`stop`. A lost or refused
connection goes to ``on_failure`` and is tried again by :func:`~callbridge.bus.publisher_mqtt.
reconnect_forever` (its back-off, its log lines).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiomqtt

from callbridge.bus.config import BusSettings
from callbridge.bus.publisher_mqtt import consume_disconnect_error, make_client, reconnect_forever

Handle = Callable[[aiomqtt.Client, aiomqtt.Message], Awaitable[None]]


class Subscription:
    def __init__(
        self,
        settings: BusSettings,
        *,
        client_id: str,
        role: str,
        topics: Sequence[str],
        handle: Handle,
        on_failure: Callable[[str], None],
        persistent: bool = False,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.role = role
        self.topics = tuple(topics)
        self.handle = handle
        self.on_failure = on_failure
        self.persistent = persistent
        self.connected = False
        self.attempts = 0
        self._subscribed = asyncio.Event()
        self._stopping = asyncio.Event()

    async def wait_subscribed(self) -> None:
        """Until the subscriptions are active (wrap in ``asyncio.timeout``)."""
        await self._subscribed.wait()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Connect, subscribe, serve, reconnect — until :meth:`stop` (or cancellation)."""
        await reconnect_forever(self.settings, self._stopping, self._connect_once, role=self.role,
                                on_failure=self.on_failure)  # fmt: skip

    async def _connect_once(self, attempt: int, connected: Callable[[], None]) -> None:
        self.attempts = attempt
        client = make_client(self.settings, client_id=self.client_id, persistent=self.persistent)
        try:
            async with client:
                self.connected = True
                consume_disconnect_error(client)
                connected()
                for topic in self.topics:  # on every connection: a broker that lost the session has none
                    await client.subscribe(topic, qos=1)
                self._subscribed.set()
                await self._serve(client)
        finally:
            self.connected = False
            self._subscribed.clear()

    async def _serve(self, client: aiomqtt.Client) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            messages = aiter(client.messages)
            while True:
                nxt = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    return
                await self.handle(client, nxt.result())
        finally:
            stop.cancel()
