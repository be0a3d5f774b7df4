"""The fast publishing path keeps the guarantees: packets, PUBACK matching, shared commits, fallback.

No timing here (bench/mqtt_publish.py measures); these tests fail when batching loses, reorders or
publishes something it should not.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest
from bus_helpers import Ping, running, settings_for, subscribed

from callbridge.bus import outbox_mirror
from callbridge.bus.fastpath import BufferedSocket, PahoPipeline, encode_publish
from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.publisher import Publisher
from callbridge.testing.mosquitto import Mosquitto

# --- pure parts ------------------------------------------------------------------------------------


def test_publish_packet_layout_for_mqtt_311_and_5() -> None:
    v3 = encode_publish("a/b", b"xyz", 0x1234, retain=False, v5=False)
    assert v3 == b"\x32\x0a\x00\x03a/b\x12\x34xyz"
    v5 = encode_publish("a/b", b"xyz", 7, retain=True, v5=True)
    assert v5 == b"\x33\x0b\x00\x03a/b\x00\x07\x00xyz"  # retain bit, property length 0
    big = encode_publish("t", b"p" * 200, 1, retain=False, v5=False)
    assert big[1:3] == bytes((205 & 0x7F | 0x80, 1))  # remaining length 205 as a two-byte varint
    with pytest.raises(ValueError):
        encode_publish("a/+", b"", 1, retain=False, v5=False)


def test_buffered_socket_serves_small_reads_from_one_read_and_passes_eof_and_wouldblock() -> None:
    left, right = socket.socketpair()
    try:
        right.setblocking(False)
        wrapped = BufferedSocket(right)
        with pytest.raises(BlockingIOError):
            wrapped.recv(1)
        left.sendall(b"\x40\x02\x00\x01\x40\x02\x00\x02")
        time.sleep(0.05)
        assert wrapped.recv(1) == b"\x40"
        assert wrapped.pending() == 7  # aiomqtt keeps reading while this is > 0
        assert wrapped.recv(3) == b"\x02\x00\x01"
        assert wrapped.recv(100) == b"\x40\x02\x00\x02"
        assert wrapped.pending() == 0
        assert wrapped.fileno() == right.fileno()  # everything else is the socket's
        left.close()
        time.sleep(0.05)
        assert wrapped.recv(1) == b""  # EOF reaches paho unchanged
    finally:
        right.close()


def test_appends_share_a_commit_and_nothing_uncommitted_is_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.append([OutgoingMessage("t", b"1")], commit=False)
        box.append([OutgoingMessage("t", b"2")], commit=False)
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0  # not yet durable
        assert [r.payload for r in box.pending()] == [b"1", b"2"]  # reading commits first
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2


def test_a_failing_batch_rolls_back_alone_inside_a_shared_transaction(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.append([OutgoingMessage("t", b"kept")], commit=False)
        broken = OutgoingMessage("t", None)  # type: ignore[arg-type]  # NOT NULL violation
        with pytest.raises(sqlite3.IntegrityError):
            box.append([OutgoingMessage("t", b"lost"), broken], commit=False)
        assert box.depth == 1
        assert [r.payload for r in box.pending()] == [b"kept"]


def test_acks_ride_along_with_an_append_and_non_contiguous_acks_delete_exactly_those(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.append([OutgoingMessage("t", b"%d" % i) for i in range(10)])
        seqs = [r.seq for r in box.pending()]
        box.append([OutgoingMessage("t", b"new")], acked=[seqs[0], seqs[1], seqs[5]])
        assert box.depth == 8
        assert box.ack([seqs[3], seqs[2], seqs[9], seqs[9]]) == 3  # unordered, with a duplicate
        assert [r.payload for r in box.pending()] == [b"4", b"6", b"7", b"8", b"new"]
        assert box.depth == 5


def test_rows_read_from_memory_match_the_table_through_coalescing_drops_and_resets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_mirror, "RECENT_MAX", 6)  # small, so the mirror resets along the way
    path = tmp_path / "o.db"

    def table(box: Outbox) -> list[tuple[int, bytes]]:
        box.commit()
        with sqlite3.connect(path) as other:
            return [(seq, bytes(p)) for seq, p in other.execute("SELECT seq, payload FROM outbox ORDER BY seq")]

    with Outbox(path, max_rows=9) as box:
        box.append([OutgoingMessage("e", b"e%d" % i) for i in range(3)], commit=False)
        box.append([OutgoingMessage("s", b"s1", retain=True, kind="state", coalesce_key="s")], commit=False)
        box.append([OutgoingMessage("s", b"s2", retain=True, kind="state", coalesce_key="s")], commit=False)
        assert [(r.seq, r.payload) for r in box.pending()] == table(box)  # s1 replaced by s2
        box.append([OutgoingMessage("e", b"e%d" % i) for i in range(3, 7)])  # past RECENT_MAX: reset
        assert [(r.seq, r.payload) for r in box.pending()] == table(box)
        rows = box.pending()
        box.ack([rows[0].seq, rows[4].seq])
        box.append([OutgoingMessage("e", b"e%d" % i) for i in range(7, 10)])  # past max_rows: drops
        expected = table(box)
        assert [(r.seq, r.payload) for r in box.pending()] == expected
        after = expected[2][0]
        assert [(r.seq, r.payload) for r in box.pending(after, limit=3)] == expected[3:6]
    with Outbox(path) as reopened:
        assert [(r.seq, r.payload) for r in reopened.pending()] == expected
        reopened.append([OutgoingMessage("e", b"later")])
        assert reopened.pending()[-1].seq > expected[-1][0]  # seqs keep increasing across a restart


# --- through a real broker -------------------------------------------------------------------------

needs_broker = pytest.mark.mosquitto


@needs_broker
@pytest.mark.parametrize("fast", [True, False], ids=["pipelined", "fallback"])
async def test_many_events_arrive_once_in_per_call_order_with_a_small_window(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    if not fast:
        monkeypatch.setattr(PahoPipeline, "supported", staticmethod(lambda client: False))
    total, calls = 1500, 7
    async with (
        subscribed(broker, "callbridge/lab/calls/#") as (_, seen),
        running(Publisher(settings_for(broker, tmp_path, in_flight=8, pipelined_in_flight=8))) as pub,
    ):
        for start in range(0, total, 50):  # many appends per loop iteration share one commit
            pub.publish_events_nowait(
                [Ping(ts=time.time(), call_id=f"c{n % calls}", hotline="110", n=n) for n in range(start, start + 50)]
            )
        await seen.wait_until(lambda c: len(c.messages) >= total, within=60)
        async with asyncio.timeout(10):
            await pub.wait_drained()
        assert pub.outbox_depth == 0
    per_call: dict[str, list[int]] = defaultdict(list)
    for topic, env in seen.envelopes():
        per_call[topic].append(env["data"]["n"])
    assert sorted(n for ns in per_call.values() for n in ns) == list(range(total))
    assert all(ns == sorted(ns) for ns in per_call.values())
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0  # deleted after PUBACK


@needs_broker
async def test_a_publish_the_broker_refuses_is_counted_and_does_not_block_the_outbox(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("user pub\ntopic write callbridge/lab/events/#\ntopic write callbridge/lab/status\n"
                   "user desk\ntopic read callbridge/lab/#\n")  # fmt: skip
    users = {"pub": "pub-pass", "desk": "desk-pass"}
    with Mosquitto(tmp_path / "acl-broker", users=users, extra_config=f"acl_file {acl}") as broker:
        settings = settings_for(broker, tmp_path, username="pub", password="pub-pass")
        async with (
            subscribed(broker, "callbridge/lab/events/#", username="desk", password="desk-pass") as (
                _,
                seen,
            ),
            running(Publisher(settings)) as pub,
        ):
            # each event goes to its hotline topic (allowed) and its call topic (refused: not in the ACL)
            await pub.publish_events([Ping(ts=time.time(), call_id="c1", hotline="119", n=n) for n in range(5)])
            await seen.wait_until(lambda c: len(c.messages) >= 5)
            async with asyncio.timeout(10):
                await pub.wait_drained()
            assert pub.refused == 5 and pub.outbox.dead_letters == 5  # set aside with the reason, not lost
            await seen.wait_until(lambda c: sum(e["type"].endswith("dead_letter") for _, e in c.envelopes()) >= 5)
    pings = [env for _, env in seen.envelopes() if env["type"] == "org.callbridge.test.ping"]
    assert [env["data"]["n"] for env in pings] == list(range(5))
    alarms = [env["data"] for _, env in seen.envelopes() if env["type"] == "org.callbridge.outbox.dead_letter"]
    assert {a["topic"] for a in alarms} == {"callbridge/lab/calls/c1"} and "0x87" in alarms[0]["reason"]
