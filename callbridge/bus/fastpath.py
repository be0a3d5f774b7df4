"""A lean QoS 1 publishing path under aiomqtt, for the outbox pump.

Profiling the outbox → MQTT path (``python -m bench.mqtt_publish --profile``) showed the time going to
per-message machinery, not to the network: aiomqtt's ``publish`` costs a Task, an Event, a
``wait_for`` and a scan of all pending calls per message; paho builds an ``MQTTMessage`` and an
``MQTTMessageInfo`` per publish, ``send()``s every packet separately, reads every 4-byte PUBACK with
three ``recv()`` calls (one wake-up of the event loop each when nothing else is queued in paho),
decodes MQTT 5 ``Properties``/``ReasonCode`` objects for it, and — with a paho in-flight limit set —
scans its whole in-flight dict on every PUBACK.

:class:`PahoPipeline` keeps aiomqtt for everything else (connect, TLS, auth, will, keepalive,
disconnect detection, the status publishes) and only takes over our own QoS 1 data messages on the
same paho client:

* packet ids come from paho's own generator (no clash with aiomqtt's publishes);
* the PUBLISH packets of one batch are encoded here and queued in paho's out-queue as ONE entry,
  so paho writes a batch with one ``send()`` (partial writes are paho's usual business);
* PUBACKs of our packet ids are recognised in paho's PUBACK handler and reported to ``on_ack``
  without building paho objects; every other PUBACK goes to paho's handler unchanged;
* the socket is wrapped in :class:`BufferedSocket`, so paho's small ``recv()`` calls are served from
  one 64 KiB read, and aiomqtt's reader keeps going while data is buffered (its ``pending()`` check);
  it gets ``TCP_NODELAY`` (paho does not set it), since batches are coalesced here already.

It relies on paho-mqtt 2.x internals (``_mid_generate``, ``_packet_queue``, ``_handle_pubackcomp``,
``_in_packet``, ``_sock``, ``_protocol``); :func:`PahoPipeline.supported` checks them and the
publisher falls back to aiomqtt's ``publish`` when any is missing. aiomqtt is pinned ``<3``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, Literal

import aiomqtt

from callbridge.bus.outbox import OutboxRow

_PUBLISH_QOS1 = 0x32  # PUBLISH, QoS 1, no DUP; | 1 for retain
_MQTT_V5 = 5
_REQUIRED = ("_mid_generate", "_packet_queue", "_handle_pubackcomp", "_in_packet", "_sock", "_protocol", "is_connected")
#: MQTT 5 reason code "Topic Name invalid": used for a row we cannot encode (reported, not sent).
TOPIC_INVALID = 0x90
_PACK_H = struct.Struct("!H").pack


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_publish(topic: str, payload: bytes, mid: int, *, retain: bool, v5: bool) -> bytes:
    """One MQTT PUBLISH packet at QoS 1 (MQTT 3.1.1 or 5 without properties)."""
    topic_b = topic.encode("utf-8")
    if not topic_b or len(topic_b) > 0xFFFF or b"+" in topic_b or b"#" in topic_b or b"\x00" in topic_b:
        raise ValueError(f"invalid topic for PUBLISH: {topic!r}")
    length = 2 + len(topic_b) + 2 + (1 if v5 else 0) + len(payload)
    if length > 268_435_455:
        raise ValueError("payload too large for MQTT")
    return b"".join(
        (
            bytes((_PUBLISH_QOS1 | (1 if retain else 0),)),
            _remaining_length(length),
            _PACK_H(len(topic_b)),
            topic_b,
            _PACK_H(mid),
            b"\x00" if v5 else b"",  # MQTT 5: property length 0
            payload,
        )
    )


class BufferedSocket:
    """Serves paho's small ``recv()`` calls from one large read; everything else goes to the socket."""

    __slots__ = ("_buf", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""

    def recv(self, bufsize: int) -> bytes:
        buf = self._buf
        if not buf:
            # An empty read (EOF) or BlockingIOError reach paho as from the socket itself.
            buf = bytes(self._sock.recv(65536))
            if not buf:
                return buf
        out, self._buf = buf[:bufsize], buf[bufsize:]
        return out

    def pending(self) -> int:
        """Bytes readable without the socket (aiomqtt keeps calling ``loop_read`` while > 0)."""
        inner = getattr(self._sock, "pending", None)
        return len(self._buf) + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class PahoPipeline:
    """Our QoS 1 publishes on the paho client inside an aiomqtt client; see the module docstring."""

    def __init__(self, client: aiomqtt.Client, on_ack: Callable[[int, int], None]) -> None:
        self._paho: Any = client._client
        self._on_ack = on_ack
        self._v5 = self._paho._protocol == _MQTT_V5
        #: packet id → outbox seq of every publish awaiting its PUBACK
        self._seq_of: dict[int, int] = {}
        self._original_puback = self._paho._handle_pubackcomp

    @staticmethod
    def supported(client: aiomqtt.Client) -> bool:
        paho = getattr(client, "_client", None)
        return paho is not None and all(hasattr(paho, name) for name in _REQUIRED)

    def attach(self) -> None:
        """Install the PUBACK hook and the buffered socket (call once connected)."""
        paho = self._paho
        paho._handle_pubackcomp = self._handle_pubackcomp
        if paho._sock is not None and not isinstance(paho._sock, BufferedSocket):
            with contextlib.suppress(OSError, AttributeError):
                # We write whole batches ourselves; Nagle would hold a small batch back until the
                # broker ACKs the previous one (40 ms delayed ACKs with a small window).
                paho._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            paho._sock = BufferedSocket(paho._sock)

    @property
    def in_flight(self) -> int:
        return len(self._seq_of)

    def send(self, rows: Sequence[OutboxRow]) -> None:
        """Queue the rows as QoS 1 PUBLISH packets (one write); raises MqttError when disconnected."""
        paho = self._paho
        if not paho.is_connected():
            raise aiomqtt.MqttError("not connected")
        packets: list[bytes] = []
        for row in rows:
            mid = paho._mid_generate()
            try:
                packets.append(encode_publish(row.topic, row.payload, mid, retain=row.retain, v5=self._v5))
            except ValueError:
                self._on_ack(row.seq, TOPIC_INVALID)  # never sendable: report instead of blocking the outbox
                continue
            self._seq_of[mid] = row.seq
        if packets:
            # mid 0 / qos 1: paho's writer does no per-packet bookkeeping for it (only QoS 0 has any).
            paho._packet_queue(0x30, b"".join(packets), 0, 1)

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> Any:
        if cmd == "PUBACK":
            packet = self._paho._in_packet["packet"]
            if len(packet) >= 2:
                seq = self._seq_of.pop(packet[0] << 8 | packet[1], None)
                if seq is not None:
                    # MQTT 5 may carry a reason code (absent = 0 success); 3.1.1 PUBACK is just the id.
                    self._on_ack(seq, packet[2] if len(packet) > 2 else 0)
                    return 0  # MQTT_ERR_SUCCESS
        return self._original_puback(cmd)
