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

from collections.abc import Callable, Sequence

import aiomqtt
import structlog

from callbridge.bus.config import BusSettings
from callbridge.bus.subscription import Subscription
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
        #: messages taken in, refused (malformed, not the peer's), and redeliveries dropped
        self.taken = 0
        self.refused = 0
        self.duplicates = 0
        self._seen = SeenIds()
        #: the connection (``link.run()`` / ``link.stop()`` / ``link.wait_subscribed()``, ``link.connected``)
        self.link = Subscription(settings, client_id=settings.resolved_client_id() + "-peer", role="peer",
                                 topics=self.filters, handle=self._handle, on_failure=self._connection_failed,
                                 persistent=True)  # fmt: skip

    def _connection_failed(self, error: str) -> None:
        log.warning("mqtt peer connection failed or lost", peer=self.peer_site, error=error)

    async def _handle(self, _client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        self.take(message.topic.value, _payload(message))

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
