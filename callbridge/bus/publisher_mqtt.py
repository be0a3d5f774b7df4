"""Building the aiomqtt client of the bus from :class:`~callbridge.bus.config.BusSettings`, quieting its
unretrieved disconnect error, and the reconnect loop both MQTT connections run (:func:`reconnect_forever`).

Split from :mod:`callbridge.bus.publisher` (which re-exports both functions) because it is not the publisher's
job: the command server builds its own connection with the same settings (TLS, credentials, protocol
version, in-flight limits), and both need the same aiomqtt work-around and the same reconnect policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.bus.config import BusSettings
from callbridge.bus.paho_private import disconnected_future

log = structlog.get_logger("callbridge.bus")

#: ``connect_once(attempt, connected)``: one connection, from connect to its end; it calls ``connected()``
#: once the broker accepted it (the back-off starts again from its minimum after a good connection).
ConnectOnce = Callable[[int, Callable[[], None]], Awaitable[None]]


#: Session expiry of a persistent session (MQTT 5): a day of the link down is queued by the broker.
SESSION_EXPIRY_S = 86_400


def make_client(
    settings: BusSettings, *, client_id: str, will: aiomqtt.Will | None = None, persistent: bool = False
) -> aiomqtt.Client:
    """An aiomqtt client configured from settings (shared with the command server).

    ``persistent``: the broker keeps the session (subscriptions and QoS 1 messages) while the client is away
    (MQTT 3.1.1 clean session off; MQTT 5 clean start off and a session expiry) — the peer link's case.
    """
    v5 = settings.protocol == "5"
    extra: dict[str, Any] = {}
    if persistent and v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        extra = {"clean_start": False, "properties": props}
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.resolved_password(),
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        clean_session=None if v5 else not persistent,
        will=will,
        keepalive=settings.keepalive,
        tls_context=settings.ssl_context(),
        max_inflight_messages=settings.in_flight,
        timeout=10,
        **extra,
    )
    # aiomqtt warns on every publish beyond 10 pending calls, which cost 35-40 % of throughput.
    client.pending_calls_threshold = settings.in_flight * 2 + 16
    return client


def consume_disconnect_error(client: aiomqtt.Client) -> None:
    """Retrieve aiomqtt's disconnect exception even when nobody awaits it (no "never retrieved" noise).

    aiomqtt sets it on a private future (reached through :mod:`callbridge.bus.paho_private`); when our
    pump fails first (a publish on a dead socket) the watcher is cancelled before it reads it.
    """
    fut = disconnected_future(client)
    if fut is not None:
        fut.add_done_callback(lambda f: None if f.cancelled() else f.exception())


async def publish_retained_once(settings: BusSettings, *, client_id: str, topic: str, payload: bytes) -> None:
    """Connect, publish one retained QoS 1 message, disconnect (the daemon's ``offline`` after a failed
    start-up, which never went online). Raises ``aiomqtt.MqttError``/``OSError``; the caller bounds it."""
    async with make_client(settings, client_id=client_id) as client:
        await client.publish(topic, payload, qos=1, retain=True)


async def reconnect_forever(
    settings: BusSettings,
    stopping: asyncio.Event,
    connect_once: ConnectOnce,
    *,
    role: str,
    on_failure: Callable[[str], None],
) -> None:
    """Connect, run, reconnect — until ``stopping`` is set (or cancellation); never gives up.

    Each attempt is logged; a failure (refused, auth, TLS, lost: ``MqttError``/``OSError``) is passed to
    ``on_failure`` as one line and followed by a jittered exponential back-off between
    ``reconnect_min_s`` and ``reconnect_max_s`` (cut short by ``stopping``).
    """
    delay = settings.reconnect_min_s
    attempt = 0

    def connected() -> None:
        nonlocal delay
        delay = settings.reconnect_min_s

    while not stopping.is_set():
        attempt += 1
        log.info("mqtt connecting", attempt=attempt, host=settings.host, port=settings.port, role=role)
        try:
            await connect_once(attempt, connected)
        except* (aiomqtt.MqttError, OSError) as group:
            on_failure("; ".join(dict.fromkeys(str(e) for e in group.exceptions)))
        if stopping.is_set():
            break
        pause = random.uniform(settings.reconnect_min_s, max(delay, settings.reconnect_min_s))
        delay = min(delay * 2, settings.reconnect_max_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)
