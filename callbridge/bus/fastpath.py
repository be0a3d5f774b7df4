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
  when paho is about to read a new packet, the run of PUBACKs of our packet ids at the front of the
  buffer is consumed here in one loop and reported to ``on_acks`` as one batch. A PUBACK split
  across reads is completed in the buffer before anyone reads it, so every PUBACK of ours is taken
  here; anything else (another packet type, a PUBACK for aiomqtt's own publishes) is left to paho,
  whose handlers run unchanged;
* the socket gets ``TCP_NODELAY`` (paho does not set it), since batches are coalesced here already.

The private internals of paho-mqtt and aiomqtt this needs are reached through one module,
:mod:`callbridge.bus.paho_private` (versions pinned, a test that fails loudly when they change);
:func:`PahoPipeline.supported` is False when any is missing and the publisher then falls back to
aiomqtt's public ``publish``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt

from callbridge.bus.idents import broker_safe
from callbridge.bus.outbox import OutboxRow
from callbridge.bus.paho_private import PahoInternals, missing, paho_client

_PUBLISH_QOS1 = 0x32  # PUBLISH, QoS 1, no DUP; | 1 for retain
_PUBACK = 0x40
_MAX_REMAINING = 268_435_455
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


def packet_end(buf: bytes, pos: int) -> int | None:
    """Where the MQTT packet starting at ``buf[pos]`` ends, or None when ``buf`` does not hold all of it."""
    length, shift, i = 0, 0, pos + 1
    while True:
        if i >= len(buf) or shift > 21:
            return None if i >= len(buf) else i  # a malformed length: paho reports it
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    end = i + length
    return end if end <= len(buf) else None


def topic_field(topic: str) -> bytes:
    """The length-prefixed UTF-8 topic of a PUBLISH; ValueError for a topic a broker must refuse."""
    if not broker_safe(topic):  # a control or non-character: the broker would drop the connection
        raise ValueError(f"invalid topic for PUBLISH: {topic!r}")
    topic_b = topic.encode("utf-8")
    if not topic_b or len(topic_b) > 0xFFFF or b"+" in topic_b or b"#" in topic_b:
        raise ValueError(f"invalid topic for PUBLISH: {topic!r}")
    return _PACK_H(len(topic_b)) + topic_b


#: Fixed headers by remaining length (negative: retained), for lengths below 16 KiB (at most 32k entries).
_HEADERS: dict[int, bytes] = {}
_HEADER_CACHE_BELOW = 0x4000


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


#: ``take(buffer, pos) -> (pos, complete_first)``: see :meth:`PahoPipeline.take_acks`.
TakeAcks = Callable[[bytes, int], tuple[int, bool]]


class BufferedSocket:
    """Serves paho's small ``recv()`` calls from one large read; everything else goes to the socket.

    ``take`` (optional) is offered the buffered bytes whenever paho asks for the first byte of a packet
    that could be a PUBACK; it returns how far it consumed them, and whether the PUBACK it stopped at is
    incomplete. Such a PUBACK is completed from the socket before paho may read it; while the rest has
    not arrived, paho hears "no data" and :meth:`pending` does not count the held bytes (aiomqtt's
    reader would otherwise spin on them).
    """

    __slots__ = ("_buf", "_held", "_pos", "_sock", "_take")

    def __init__(self, sock: Any, take: TakeAcks | None = None) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._held = False
        self._take = take

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        while True:
            if self._held or pos >= len(buf):
                if not self._held:
                    self._buf, self._pos = b"", 0  # consistent even when the read below raises
                # An empty read (EOF) or BlockingIOError reach paho as from the socket itself.
                data = bytes(self._sock.recv(65536))
                if not data:
                    return data
                buf, pos = (buf[pos:] + data if self._held else data), 0
                self._buf, self._pos, self._held = buf, 0, False
            if bufsize == 1 and buf[pos] == _PUBACK and self._take is not None:
                taken, incomplete = self._take(buf, pos)
                if taken != pos:
                    pos = self._pos = taken
                    continue
                if incomplete:
                    self._held = True  # read the rest before anyone reads this PUBACK
                    continue
            out = buf[pos : pos + bufsize]
            self._pos = pos + len(out)
            return out

    def pending(self) -> int:
        """Bytes readable without the socket (aiomqtt keeps calling ``loop_read`` while > 0)."""
        inner = getattr(self._sock, "pending", None)
        held = 0 if self._held else len(self._buf) - self._pos
        return held + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class ConnackLimits:
    """The broker's MQTT 5 Receive Maximum, caught from CONNACK (paho does not keep its properties).

    Install before connecting: it wraps the paho ``on_connect`` callback aiomqtt set and passes every
    call on unchanged. ``receive_maximum`` is None when the broker sent none (no limit but 65,535).
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self.receive_maximum: int | None = None
        paho = paho_client(client)
        inner: Any = paho.on_connect

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
        self._paho = PahoInternals(client)
        self._on_acks = on_acks
        self._v5 = self._paho.mqtt5
        #: packet id → outbox seq of every publish awaiting its PUBACK
        self._seq_of: dict[int, int] = {}
        self._topic_fields: dict[str, bytes] = {}

    @staticmethod
    def supported(client: aiomqtt.Client) -> bool:
        return not missing(client)

    def attach(self) -> None:
        """Install the buffered socket that reads our PUBACKs (call once connected)."""

        def wrap(sock: Any) -> BufferedSocket:
            with contextlib.suppress(OSError, AttributeError):
                # We write whole batches ourselves; Nagle would hold a small batch back until the
                # broker ACKs the previous one (40 ms delayed ACKs with a small window).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return BufferedSocket(sock, self.take_acks)

        self._paho.wrap_socket(wrap, BufferedSocket)

    def unacknowledged(self) -> list[int]:
        """Outbox seqs sent on this connection and not acknowledged yet, oldest first."""
        return sorted(self._seq_of.values())

    @property
    def in_flight(self) -> int:
        return len(self._seq_of)

    def send(self, rows: Sequence[OutboxRow]) -> None:
        """Queue the rows as QoS 1 PUBLISH packets (one write); raises MqttError when disconnected."""
        if not self._paho.connected():
            raise aiomqtt.MqttError("not connected")
        fields = self._topic_fields
        headers = _HEADERS
        seq_of = self._seq_of
        next_mid = self._paho.next_mid
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
                length = len(field) + overhead + len(row.payload)
                header = headers.get(length if not row.retain else -length)
                if header is None:
                    header = _fixed_header(row.retain, length)
                    if length < _HEADER_CACHE_BELOW:
                        headers[length if not row.retain else -length] = header
            except ValueError:
                unsendable.append((row.seq, TOPIC_INVALID))  # never sendable: report, don't block the outbox
                continue
            mid = next_mid()
            seq_of[mid] = row.seq
            add((header, field, _PACK_H(mid), props, row.payload))
        if parts:
            self._paho.queue_bytes(b"".join(parts))
        if unsendable:
            self._on_acks([], unsendable)

    def take_acks(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """Consume the PUBACKs of our packet ids at ``buf[pos:]``: (the new position, incomplete).

        Only at a packet boundary (paho holds no partial packet). The run stops at a PUBACK for a
        packet id that is not ours (paho reads it) and at one not complete in ``buf``: ``incomplete``
        is then True and the caller completes it first. Reason code: absent = 0 (success); >= 0x80 refused.
        """
        if not self._paho.between_packets():
            return pos, False
        seq_of = self._seq_of
        acked: list[int] = []
        refused: list[tuple[int, int]] = []
        incomplete = False
        size = len(buf)
        while pos < size and buf[pos] == _PUBACK:
            if pos + 1 < size and buf[pos + 1] < 0x80:  # the usual PUBACK: a one-byte remaining length
                body, end = pos + 2, pos + 2 + buf[pos + 1]
                if end > size:
                    incomplete = True
                    break
            else:
                found = packet_end(buf, pos)
                if found is None:
                    incomplete = True
                    break
                body, end = _body_start(buf, pos), found  # after the remaining length
            if end - body < 2:
                break  # malformed (no packet id): paho reports it
            seq = seq_of.pop(buf[body] << 8 | buf[body + 1], None)
            if seq is None:
                break
            code = buf[body + 2] if end - body > 2 else 0
            if code < 0x80:
                acked.append(seq)
            else:
                refused.append((seq, code))
            pos = end
        if acked or refused:
            self._paho.note_received()
            self._on_acks(acked, refused)
        return pos, incomplete


def _body_start(buf: bytes, pos: int) -> int:
    """Where the variable header of the packet at ``pos`` starts (after its remaining-length bytes)."""
    i = pos + 1
    while buf[i] & 0x80:
        i += 1
    return i + 1
