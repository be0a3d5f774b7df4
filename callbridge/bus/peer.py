"""The MQTT side of the link between two centres' daemons (issue 21): the other centre's hand-over events in.

A daemon with ``centres.peer_site`` subscribes, on its own broker (bridged to the other centre's, or one
cluster), to the peer's hand-over events under this centre's hotlines (:func:`~callbridge.centres.link.
peer_filters`), at QoS 1 on a *persistent* session (client id ``<client_id>-peer``): while this daemon is
away the broker keeps what arrives, and the bridge's own persistent session keeps what the other broker
could not pass on, so nothing is lost to an outage of either. It reconnects like the other MQTT
connections (:func:`~callbridge.bus.publisher_mqtt.reconnect_forever`).

Every message is checked (:func:`~callbridge.centres.link.peer_event`: the source is the peer, the type a
hand-over event, every identifier within its alphabet) before its typed event goes to ``deliver``; a
refused one is logged with its reason and counted, and delivery goes on. A QoS 1 redelivery (or the same
envelope under two hotlines) is delivered once (by envelope id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import aiomqtt
import structlog

from callbridge.bus.config import BusSettings
from callbridge.bus.publisher_mqtt import consume_disconnect_error, make_client, reconnect_forever
from callbridge.centres.link import PeerEventRefused, SeenIds, peer_event
from callbridge.domain import DomainEvent

log = structlog.get_logger("callbridge.bus.peer")

Deliver = Callable[[Sequence[DomainEvent]], None]


class PeerSubscriber:
    """Consumes the peer centre's hand-over events; ``deliver`` gets each valid one once."""

    def __init__(self, settings: BusSettings, *, peer_site: str, filters: Sequence[str], deliver: Deliver) -> None:
        self.settings = settings
        self.peer_site = peer_site
        self.filters = tuple(filters)
        self.deliver = deliver
        self.connected = False
        self.attempts = 0
        #: messages taken in, refused (malformed, not the peer's), and redeliveries dropped
        self.taken = 0
        self.refused = 0
        self.duplicates = 0
        self._seen = SeenIds()
        self._subscribed = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def client_id(self) -> str:
        return self.settings.resolved_client_id() + "-peer"

    async def wait_subscribed(self) -> None:
        """Until the subscriptions are active (wrap in ``asyncio.timeout``)."""
        await self._subscribed.wait()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Connect, subscribe, take in, reconnect — until :meth:`stop` (or cancellation)."""
        await reconnect_forever(self.settings, self._stopping, self._connect_once, role="peer",
                                on_failure=self._connection_failed)  # fmt: skip

    async def _connect_once(self, attempt: int, connected: Callable[[], None]) -> None:
        self.attempts = attempt
        client = make_client(self.settings, client_id=self.client_id, persistent=True)
        try:
            async with client:
                self.connected = True
                consume_disconnect_error(client)
                connected()
                for topic in self.filters:  # again on every connection: a broker that lost the session
                    await client.subscribe(topic, qos=1)
                self._subscribed.set()
                log.info("peer link subscribed", peer=self.peer_site, filters=len(self.filters))
                await self._serve(client)
        finally:
            self.connected = False
            self._subscribed.clear()

    def _connection_failed(self, error: str) -> None:
        log.warning("mqtt peer connection failed or lost", peer=self.peer_site, error=error)

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
                message = nxt.result()
                self.take(message.topic.value, _payload(message))
        finally:
            stop.cancel()

    def take(self, topic: str, payload: bytes) -> DomainEvent | None:
        """One message: its event delivered (and returned), or ``None`` (refused, or seen before)."""
        try:
            event_id, event = peer_event(payload, peer_site=self.peer_site)
        except PeerEventRefused as exc:
            self.refused += 1
            log.warning("peer event refused", topic=topic[:200], reason=str(exc))
            return None
        if not self._seen.first_time(event_id):
            self.duplicates += 1
            return None
        self.taken += 1
        try:
            self.deliver([event])
        except Exception:  # a fault of one consumer must not end the link: the next event is still taken in
            log.exception("peer event not handled", topic=topic[:200], type=event.TYPE)
        return event


def _payload(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
