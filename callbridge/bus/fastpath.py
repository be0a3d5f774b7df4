"""A lean QoS 1 publishing path under aiomqtt, for the outbox pump.

Profiling the outbox → MQTT path (``python -m bench.mqtt_publish --profile``) showed the time going to
per-message machinery, not to the network: aiomqtt's ``publish`` costs a Task, an Event, a
``wait_for`` and a scan of all pending calls per message; paho builds an ``MQTTMessage`` and an
``MQTTMessageInfo`` per publish, ``send()``s every packet separately, reads every 4-byte PUBACK with
three ``recv()`` calls and a dispatch (~8 µs of Python per PUBACK on the bench machine, as much as
encoding and storing the message), decodes MQTT 5 ``Properties``/``ReasonCode`` objects for it, and
— with a paho in-flight limit set — scans its whole in-flight dict on every PUBACK.

:class:`PahoPipeline` keeps aiomqtt for everything else (connect, TLS, auth, will, keepalive,
disconnect detection, the status publishes) and only takes over our own QoS 1 data messages on the
same paho client:

* packet ids come from paho's own generator (no clash with aiomqtt's publishes);
* the PUBLISH packets of one batch are encoded here (topic fields cached) and queued in paho's
  out-queue as ONE entry, so paho writes a batch with one ``send()`` (partial writes are paho's
  usual business);
* the socket is wrapped in :class:`BufferedSocket`: paho's small ``recv()`` calls are served from one
  64 KiB read, aiomqtt's reader keeps going while data is buffered (its ``pending()`` check), and
  when paho is about to read a new packet, the run of complete PUBACKs of our packet ids at the
  front of the buffer is consumed here in one loop and reported to ``on_acks`` as one batch;
  anything else (another packet type, a PUBACK with properties, one split across reads, one for
  aiomqtt's own publishes) is left to paho, whose PUBACK handler still recognises ours;
* the socket gets ``TCP_NODELAY`` (paho does not set it), since batches are coalesced here already.

It relies on paho-mqtt 2.x internals (``_mid_generate``, ``_packet_queue``, ``_handle_pubackcomp``,
``_in_packet``, ``_sock``, ``_protocol``, ``_msgtime_mutex``, ``_last_bytes_received``);
:func:`PahoPipeline.supported` checks them and the publisher falls back to aiomqtt's ``publish`` when
any is missing. aiomqtt is pinned ``<3``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import aiomqtt

from callbridge.bus.idents import broker_safe
from callbridge.bus.outbox import OutboxRow

_PUBLISH_QOS1 = 0x32  # PUBLISH, QoS 1, no DUP; | 1 for retain
_PUBACK = 0x40
_MQTT_V5 = 5
_MAX_REMAINING = 268_435_455
_REQUIRED = (
    "_mid_generate", "_packet_queue", "_handle_pubackcomp", "_in_packet", "_sock", "_protocol", "is_connected",
    "_msgtime_mutex", "_last_bytes_received",
)  # fmt: skip
#: MQTT 5 reason code "Topic Name invalid": used for a row we cannot encode (reported, not sent).
TOPIC_INVALID = 0x90
_PACK_H = struct.Struct("!H").pack
#: Encoded topic fields kept (call topics are one per call: the cache is emptied when full).
_TOPIC_CACHE_MAX = 8192

#: ``on_acks(acknowledged_seqs, refused)``: outbox seqs whose PUBACK arrived with success, and
#: (seq, reason code) pairs the broker refused (MQTT 5 reason code >= 0x80) or that could not be sent.
AckCallback = Callable[[list[int], list[tuple[int, int]]], None]


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def topic_field(topic: str) -> bytes:
    """The length-prefixed UTF-8 topic of a PUBLISH; ValueError for a topic a broker must refuse."""
    if not broker_safe(topic):  # a control or non-character: the broker would drop the connection
        raise ValueError(f"invalid topic for PUBLISH: {topic!r}")
    topic_b = topic.encode("utf-8")
    if not topic_b or len(topic_b) > 0xFFFF or b"+" in topic_b or b"#" in topic_b:
        raise ValueError(f"invalid topic for PUBLISH: {topic!r}")
    return _PACK_H(len(topic_b)) + topic_b


def _fixed_header(retain: bool, length: int) -> bytes:
    if length > _MAX_REMAINING:
        raise ValueError("payload too large for MQTT")
    first = _PUBLISH_QOS1 | (1 if retain else 0)
    if length < 0x80:
        return bytes((first, length))
    if length < 0x4000:
        return bytes((first, length & 0x7F | 0x80, length >> 7))
    return bytes((first,)) + _remaining_length(length)


def encode_publish(topic: str, payload: bytes, mid: int, *, retain: bool, v5: bool) -> bytes:
    """One MQTT PUBLISH packet at QoS 1 (MQTT 3.1.1 or 5 without properties)."""
    field = topic_field(topic)
    props = b"\x00" if v5 else b""  # MQTT 5: property length 0
    header = _fixed_header(retain, len(field) + 2 + len(props) + len(payload))
    return b"".join((header, field, _PACK_H(mid), props, payload))


class BufferedSocket:
    """Serves paho's small ``recv()`` calls from one large read; everything else goes to the socket.

    ``take(buffer, pos) -> pos`` (optional) is offered the buffered bytes whenever paho asks for the
    first byte of a packet that could be a PUBACK; it returns how far it consumed them.
    """

    __slots__ = ("_buf", "_pos", "_sock", "_take")

    def __init__(self, sock: Any, take: Callable[[bytes, int], int] | None = None) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._take = take

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        while True:
            if pos >= len(buf):
                self._buf, self._pos = b"", 0  # consistent even when the read below raises
                # An empty read (EOF) or BlockingIOError reach paho as from the socket itself.
                buf, pos = bytes(self._sock.recv(65536)), 0
                if not buf:
                    return buf
                self._buf = buf
            if bufsize == 1 and buf[pos] == _PUBACK and self._take is not None:
                taken = self._take(buf, pos)
                if taken != pos:
                    pos = self._pos = taken
                    continue
            out = buf[pos : pos + bufsize]
            self._pos = pos + len(out)
            return out

    def pending(self) -> int:
        """Bytes readable without the socket (aiomqtt keeps calling ``loop_read`` while > 0)."""
        inner = getattr(self._sock, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class ConnackLimits:
    """The broker's MQTT 5 Receive Maximum, caught from CONNACK (paho does not keep its properties).

    Install before connecting: it wraps the paho ``on_connect`` callback aiomqtt set and passes every
    call on unchanged. ``receive_maximum`` is None when the broker sent none (no limit but 65,535).
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self.receive_maximum: int | None = None
        paho: Any = client._client
        inner = paho.on_connect

        def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any = None) -> None:
            value = getattr(properties, "ReceiveMaximum", None)
            self.receive_maximum = int(value) if value else None
            inner(c, userdata, flags, reason_code, properties)

        paho.on_connect = on_connect

    def window(self, wanted: int) -> int:
        """``wanted`` publishes in flight, capped by the broker's Receive Maximum."""
        return max(1, min(wanted, self.receive_maximum or 65535))


class PahoPipeline:
    """Our QoS 1 publishes on the paho client inside an aiomqtt client; see the module docstring."""

    def __init__(self, client: aiomqtt.Client, on_acks: AckCallback) -> None:
        self._paho: Any = client._client
        self._on_acks = on_acks
        self._v5 = self._paho._protocol == _MQTT_V5
        #: packet id → outbox seq of every publish awaiting its PUBACK
        self._seq_of: dict[int, int] = {}
        self._topic_fields: dict[str, bytes] = {}
        self._original_puback = self._paho._handle_pubackcomp

    @staticmethod
    def supported(client: aiomqtt.Client) -> bool:
        paho = getattr(client, "_client", None)
        return paho is not None and all(hasattr(paho, name) for name in _REQUIRED)

    def attach(self) -> None:
        """Install the PUBACK hooks and the buffered socket (call once connected)."""
        paho = self._paho
        paho._handle_pubackcomp = self._handle_pubackcomp
        if paho._sock is not None and not isinstance(paho._sock, BufferedSocket):
            with contextlib.suppress(OSError, AttributeError):
                # We write whole batches ourselves; Nagle would hold a small batch back until the
                # broker ACKs the previous one (40 ms delayed ACKs with a small window).
                paho._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            paho._sock = BufferedSocket(paho._sock, self.take_acks)

    def unacknowledged(self) -> list[int]:
        """Outbox seqs sent on this connection and not acknowledged yet, oldest first."""
        return sorted(self._seq_of.values())

    @property
    def in_flight(self) -> int:
        return len(self._seq_of)

    def send(self, rows: Sequence[OutboxRow]) -> None:
        """Queue the rows as QoS 1 PUBLISH packets (one write); raises MqttError when disconnected."""
        paho = self._paho
        if not paho.is_connected():
            raise aiomqtt.MqttError("not connected")
        fields = self._topic_fields
        seq_of = self._seq_of
        next_mid = paho._mid_generate
        props = b"\x00" if self._v5 else b""  # MQTT 5: property length 0
        overhead = 2 + len(props)
        parts: list[bytes] = []
        add = parts.extend
        unsendable: list[tuple[int, int]] = []
        for row in rows:
            try:
                field = fields.get(row.topic)
                if field is None:
                    field = topic_field(row.topic)
                    if len(fields) >= _TOPIC_CACHE_MAX:
                        fields.clear()
                    fields[row.topic] = field
                header = _fixed_header(row.retain, len(field) + overhead + len(row.payload))
            except ValueError:
                unsendable.append((row.seq, TOPIC_INVALID))  # never sendable: report, don't block the outbox
                continue
            mid = next_mid()
            seq_of[mid] = row.seq
            add((header, field, _PACK_H(mid), props, row.payload))
        if parts:
            # mid 0 / qos 1: paho's writer does no per-packet bookkeeping for it (only QoS 0 has any).
            paho._packet_queue(0x30, b"".join(parts), 0, 1)
        if unsendable:
            self._on_acks([], unsendable)

    def take_acks(self, buf: bytes, pos: int) -> int:
        """Consume the complete PUBACKs of our packet ids at ``buf[pos:]``; returns the new position.

        Only at a packet boundary (paho holds no partial packet). A PUBACK with properties, one not
        complete in ``buf`` or one for a packet id that is not ours stops the run: paho reads it.
        """
        if self._paho._in_packet["command"] != 0:
            return pos
        seq_of = self._seq_of
        end = len(buf)
        acked: list[int] = []
        refused: list[tuple[int, int]] = []
        while pos + 4 <= end and buf[pos] == _PUBACK:
            length = buf[pos + 1]
            if length == 2:
                code = 0  # 3.1.1, or MQTT 5 success without a reason code
            elif length == 3 and pos + 5 <= end:
                code = buf[pos + 4]
            else:
                break
            seq = seq_of.pop(buf[pos + 2] << 8 | buf[pos + 3], None)
            if seq is None:
                break
            if code < 0x80:
                acked.append(seq)
            else:
                refused.append((seq, code))
            pos += 2 + length
        if acked or refused:
            paho = self._paho
            with paho._msgtime_mutex:  # what paho's own read does: the keepalive sees the traffic
                paho._last_bytes_received = time.monotonic()
            self._on_acks(acked, refused)
        return pos

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> Any:
        if cmd == "PUBACK":
            packet = self._paho._in_packet["packet"]
            if len(packet) >= 2:
                seq = self._seq_of.pop(packet[0] << 8 | packet[1], None)
                if seq is not None:
                    # MQTT 5 may carry a reason code (absent = 0 success); 3.1.1 PUBACK is just the id.
                    code = packet[2] if len(packet) > 2 else 0
                    if code < 0x80:
                        self._on_acks([seq], [])
                    else:
                        self._on_acks([], [(seq, code)])
                    return 0  # MQTT_ERR_SUCCESS
        return self._original_puback(cmd)
