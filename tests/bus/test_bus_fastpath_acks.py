"""Bulk PUBACK reading, the broker's Receive Maximum, and the event fast path of the outbox.

No timing (bench/ measures): these fail when a PUBACK is lost, taken from paho at the wrong moment,
reported twice, or when the window ignores the broker's limit.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bus_helpers import Ping, running, settings_for, subscribed

from callbridge.bus.fastpath import BufferedSocket, PahoPipeline
from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.publisher import Publisher
from callbridge.testing.mosquitto import Mosquitto


class FakePaho:
    """The paho internals PahoPipeline touches, recording what it is given."""

    _protocol = 5

    def __init__(self) -> None:
        self._in_packet: dict[str, Any] = {"command": 0, "packet": bytearray()}
        self._msgtime_mutex = threading.Lock()
        self._last_bytes_received = 0.0
        self._sock: Any = None
        self.mid = 0
        self.queued: list[bytes] = []

    def is_connected(self) -> bool:
        return True

    def _mid_generate(self) -> int:
        self.mid += 1
        return self.mid

    def _packet_queue(self, command: int, packet: bytes, mid: int, qos: int) -> None:
        self.queued.append(packet)


class FakeClient:
    def __init__(self) -> None:
        self._client = FakePaho()


def puback(mid: int, code: int | None = None) -> bytes:
    if code is None:
        return b"\x40\x02" + struct.pack("!H", mid)
    return b"\x40\x03" + struct.pack("!H", mid) + bytes((code,))


def pipeline() -> tuple[PahoPipeline, FakePaho, list[int], list[tuple[int, int]]]:
    client = FakeClient()
    acked: list[int] = []
    refused: list[tuple[int, int]] = []

    def on_acks(ok: list[int], bad: list[tuple[int, int]]) -> None:
        acked.extend(ok)
        refused.extend(bad)

    return PahoPipeline(client, on_acks), client._client, acked, refused  # type: ignore[arg-type]


def rows(box: Outbox, n: int) -> list[Any]:
    box.append_events([(f"t/{i}", b"p%d" % i) for i in range(n)])
    return box.pending(limit=n)


def puback_with_properties(mid: int, code: int, reason: bytes) -> bytes:
    props = b"\x1f" + struct.pack("!H", len(reason)) + reason  # Reason String
    body = struct.pack("!H", mid) + bytes((code, len(props))) + props
    return b"\x40" + bytes((len(body),)) + body


def test_a_run_of_our_pubacks_is_taken_in_one_go_and_stops_where_paho_must_read(tmp_path: Path) -> None:
    pipe, paho, acked, refused = pipeline()
    with Outbox(tmp_path / "o.db") as box:
        sent = rows(box, 6)
        pipe.send(sent)  # mids 1..6
        assert len(paho.queued) == 1 and pipe.in_flight == 6  # one write for the batch
        seqs = [r.seq for r in sent]
        data = puback(1) + puback(2, 0x10) + puback(3, 0x87) + puback(99) + puback(4)
        assert pipe.take_acks(data, 0) == (4 + 5 + 5, False)  # stops at mid 99: not ours, paho reads it
        assert acked == [seqs[0], seqs[1]] and refused == [(seqs[2], 0x87)]  # 0x10 is a success code
        paho._in_packet["command"] = 0x30  # paho is inside a packet: nothing may be taken
        assert pipe.take_acks(puback(4), 0) == (0, False)
        paho._in_packet["command"] = 0
        assert pipe.take_acks(puback(4) + b"\x40\x02\x00", 0) == (4, True)  # the caller completes the last
        with_props = puback_with_properties(5, 0x90, b"no")
        assert pipe.take_acks(with_props + puback(6), 0) == (len(with_props) + 4, False)  # properties: ours too
        assert acked == [seqs[0], seqs[1], seqs[3], seqs[5]] and refused[-1] == (seqs[4], 0x90)
        assert pipe.in_flight == 0


def test_the_buffered_socket_hands_pubacks_over_and_serves_the_rest_to_paho() -> None:
    pipe, paho, acked, _ = pipeline()
    pipe._seq_of.update({1: 101, 2: 102, 3: 103, 4: 104})
    left, right = socket.socketpair()
    try:
        right.setblocking(False)
        wrapped = BufferedSocket(right, pipe.take_acks)
        left.sendall(puback(1) + puback(2) + b"\xd0\x00" + puback(3))  # PINGRESP in between
        time.sleep(0.05)
        assert wrapped.recv(1) == b"\xd0"  # both PUBACKs taken, paho gets the PINGRESP
        assert acked == [101, 102] and paho._last_bytes_received > 0
        paho._in_packet["command"] = 0xD0
        assert wrapped.recv(1) == b"\x00"  # its remaining length: never taken as a PUBACK
        paho._in_packet["command"] = 0
        with pytest.raises(BlockingIOError):
            wrapped.recv(1)  # the last PUBACK taken, nothing left: "no data" for paho
        assert acked == [101, 102, 103] and wrapped.pending() == 0
        left.sendall(puback(4)[:3])  # a PUBACK split across two reads
        time.sleep(0.05)
        with pytest.raises(BlockingIOError):
            wrapped.recv(1)  # held until complete: paho never sees half of it
        assert wrapped.pending() == 0 and acked == [101, 102, 103]  # aiomqtt's reader does not spin on it
        left.sendall(puback(4)[3:] + b"\xd0\x00")
        time.sleep(0.05)
        assert wrapped.recv(1) == b"\xd0" and acked == [101, 102, 103, 104]
        assert wrapped.recv(1) == b"\x00"
        left.close()
        time.sleep(0.05)
        assert wrapped.recv(1) == b""  # EOF reaches paho unchanged
    finally:
        right.close()


def test_event_rows_and_generic_rows_share_one_sequence_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append_events([("e/1", b"a"), ("c/1", b"a")])
        box.append([OutgoingMessage("s/1", b"st", retain=True, kind="state", coalesce_key="s/1")])
        box.append_events([("e/1", b"b")], commit=False)
        expected = [(r.seq, r.topic, r.payload, r.retain, r.kind) for r in box.pending()]
    assert [e[1:] for e in expected] == [
        ("e/1", b"a", False, "event"), ("c/1", b"a", False, "event"), ("s/1", b"st", True, "state"),
        ("e/1", b"b", False, "event"),
    ]  # fmt: skip
    assert [e[0] for e in expected] == sorted(e[0] for e in expected)
    with Outbox(path) as reopened:
        assert [(r.seq, r.topic, r.payload, r.retain, r.kind) for r in reopened.pending()] == expected


def test_an_outbox_written_with_the_old_kind_index_opens_and_still_drops_state_first(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append_events([("e", b"1")])
    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX outbox_kind ON outbox(kind, seq)")  # what earlier versions created
    with Outbox(path, max_rows=3) as box:
        box.append([OutgoingMessage("s", b"s", retain=True, kind="state", coalesce_key="s")])
        result = box.append_events([("e", b"2"), ("e", b"3")])
        assert (result.dropped_state, result.dropped_events) == (1, 0)
        assert [r.payload for r in box.pending()] == [b"1", b"2", b"3"]
    with sqlite3.connect(path) as db:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "outbox_kind" not in names and "outbox_rare_kinds" in names


@pytest.mark.mosquitto
async def test_the_window_honours_the_brokers_receive_maximum_and_nothing_is_lost(tmp_path: Path) -> None:
    # mosquitto announces max_inflight_messages to MQTT 5 clients as Receive Maximum (the last
    # occurrence of the option wins over the fixture's unlimited default)
    with Mosquitto(tmp_path / "broker", extra_config="max_inflight_messages 5") as broker:
        async with (
            subscribed(broker, "callbridge/lab/calls/#") as (_, seen),
            running(Publisher(settings_for(broker, tmp_path))) as pub,
        ):
            pub.publish_events_nowait([Ping(ts=time.time(), call_id=f"c{n % 3}", n=n) for n in range(300)])
            await seen.wait_until(lambda c: len(c.messages) >= 300, within=30)
            async with asyncio.timeout(10):
                await pub.wait_drained()
            assert pub.window == 5
    assert sorted(env["data"]["n"] for _, env in seen.envelopes()) == list(range(300))


@pytest.mark.mosquitto
async def test_without_a_receive_maximum_the_configured_window_is_used(broker: Mosquitto, tmp_path: Path) -> None:
    async with running(Publisher(settings_for(broker, tmp_path, pipelined_in_flight=500))) as pub:
        assert pub.window == 500  # known from CONNACK, before the publisher reports connected
