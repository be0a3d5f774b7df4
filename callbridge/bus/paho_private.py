"""The one module that touches private internals of paho-mqtt and aiomqtt (and nothing else does).

Why a private hook at all: the publishing fast path (:mod:`callbridge.bus.fastpath`) writes whole
batches of QoS 1 PUBLISH packets on aiomqtt's paho connection and reads runs of PUBACKs in bulk. Neither
library has a public API for that: aiomqtt's ``publish`` costs a Task, an Event and a ``wait_for`` per
message and paho's an ``MQTTMessage``, an ``MQTTMessageInfo`` and a ``send()`` each (the profile that led
here: docs in bench/README.md). Everything else (connect, TLS, auth, will, keepalive, disconnect,
subscriptions) stays on the public APIs.

What is used, and nothing more: aiomqtt ``Client._client`` (its paho client) and ``Client._disconnected``
(its disconnect future); paho ``Client._mid_generate`` (packet ids, shared with paho's own publishes),
``_packet_queue`` (queue bytes for paho's writer), ``_in_packet["command"]`` (0 between packets),
``_sock`` (the socket, wrapped to read PUBACKs in bulk), ``_protocol``, ``_msgtime_mutex`` and
``_last_bytes_received`` (the keepalive's view of traffic). Nothing is replaced on paho's class or
instances except the socket object (paho's own handlers run unchanged).

The versions are pinned in ``pyproject.toml`` (paho-mqtt ``>=2.1,<2.3``, aiomqtt ``>=2.5,<3``), and
``tests/bus/test_bus_paho_private_api.py`` fails loudly, naming the attribute, when any of these is
missing or changed shape; at run time :func:`missing` makes the publisher fall back to aiomqtt's public
``publish`` instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_mqtt

#: paho attributes the fast path needs (checked by :func:`missing` and by the test).
PAHO_ATTRIBUTES = (
    "_mid_generate", "_packet_queue", "_in_packet", "_sock", "_protocol", "_msgtime_mutex",
    "_last_bytes_received", "is_connected",
)  # fmt: skip
_MQTT_V5 = 5
_PUBLISH = 0x30


def paho_client(client: aiomqtt.Client) -> paho_mqtt.Client:
    """The paho client inside an aiomqtt client (its public callbacks, e.g. ``on_connect``, are then ours)."""
    inner: paho_mqtt.Client = client._client
    return inner


def missing(client: aiomqtt.Client) -> list[str]:
    """Private attributes the fast path needs that this client lacks ([] when it can run)."""
    inner = getattr(client, "_client", None)
    if inner is None:
        return ["aiomqtt.Client._client"]
    return [f"paho.Client.{name}" for name in PAHO_ATTRIBUTES if not hasattr(inner, name)]


def disconnected_future(client: aiomqtt.Client) -> asyncio.Future[None] | None:
    """aiomqtt's private disconnect future (None when this aiomqtt has none)."""
    fut = getattr(client, "_disconnected", None)
    return fut if isinstance(fut, asyncio.Future) else None


class PahoInternals:
    """Typed access to the internals one :class:`~callbridge.bus.fastpath.PahoPipeline` uses."""

    __slots__ = ("_paho", "next_mid")

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho: Any = client._client
        #: A new packet id from paho's own generator (no clash with aiomqtt's publishes).
        self.next_mid: Callable[[], int] = self._paho._mid_generate

    @property
    def mqtt5(self) -> bool:
        return bool(self._paho._protocol == _MQTT_V5)

    def connected(self) -> bool:
        return bool(self._paho.is_connected())

    def queue_bytes(self, data: bytes) -> None:
        """Queue already encoded packets for paho's writer, as ONE entry (one ``send()``).

        mid 0 and QoS 1: paho's writer does no per-packet bookkeeping for it (only QoS 0 has any)."""
        self._paho._packet_queue(_PUBLISH, data, 0, 1)

    def between_packets(self) -> bool:
        """True when paho holds no partly read packet (paho replaces the dict per packet: read it each time)."""
        return bool(self._paho._in_packet["command"] == 0)

    def note_received(self) -> None:
        """What paho's own read does: the keepalive sees the traffic we consumed for it."""
        paho = self._paho
        with paho._msgtime_mutex:
            paho._last_bytes_received = time.monotonic()

    def wrap_socket(self, wrap: Callable[[Any], Any], already: type) -> bool:
        """Replace paho's socket by ``wrap(socket)`` unless it is an ``already`` instance; False when none."""
        sock = self._paho._sock
        if sock is None:
            return False
        if not isinstance(sock, already):
            self._paho._sock = wrap(sock)
        return True
