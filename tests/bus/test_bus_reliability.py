"""Nothing lost: broker killed mid-stream, publisher restarted, outbox bound reached."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from bus_helpers import Collector, Ping, running, settings_for, subscribed

from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.publisher import Publisher
from callbridge.testing.mosquitto import Mosquitto

pytestmark = pytest.mark.mosquitto

TOTAL = 2000
CALLS = 20


def dedup(collectors: list[Collector]) -> list[dict[str, Any]]:
    """First occurrence of every envelope id, in arrival order (what a careful subscriber keeps)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for collector in collectors:
        for _, env in collector.envelopes("callbridge/lab/events/"):
            if env["id"] not in seen:
                seen.add(env["id"])
                out.append(env)
    return out


def batch_of(start: int, size: int = 25) -> list[Ping]:
    return [Ping(ts=time.time(), call_id=f"call-{n % CALLS}", hotline="12345", n=n) for n in range(start, start + size)]


@pytest.mark.slow
async def publish_paced(pub: Publisher, desk: Collector, ids: set[str], produced: int, until: int) -> int:
    """Batches of 25 events, the next once the desk has seen the previous one; returns the count produced."""
    while produced < until:
        await pub.publish_events(batch_of(produced))
        produced += 25
        await desk.wait_until(lambda c, n=produced: len(ids) >= n)
    return produced


async def test_broker_killed_and_restarted_mid_stream_loses_nothing_and_keeps_call_order(tmp_path: Path) -> None:
    """2,000 events; the broker is SIGKILLed while publishes are in flight, events keep coming while it
    is down, then it restarts on the same port.

    mosquitto runs without persistence, so what it had acknowledged but not yet written to the
    subscriber dies with it — the broker's loss, not ours. The stream is therefore paced to the
    subscriber (the next batch once the previous one arrived), which isolates what the publisher
    guarantees: every event it was given reaches the broker at least once, in per-call order.
    """
    users = {"pub": "pub-pass", "desk": "desk-pass"}
    ids: set[str] = set()  # envelope ids the desk has seen, across its two sessions
    desk: dict[str, Any] = {"username": "desk", "password": "desk-pass", "ids": ids}
    with Mosquitto(tmp_path / "broker", users=users) as broker:
        settings = settings_for(broker, tmp_path, username="pub", password="pub-pass")
        collectors: list[Collector] = []
        produced = 0
        async with running(Publisher(settings)) as pub:
            async with subscribed(broker, "callbridge/lab/events/#", **desk) as (_, first):
                collectors.append(first)
                produced = await publish_paced(pub, first, ids, produced, 800)
                broker.pause()  # frozen: it reads nothing and acknowledges nothing
                await pub.publish_events(batch_of(produced))
                produced += 25
                await asyncio.sleep(0.05)  # the pump writes the batch into the frozen broker's socket
                in_flight_at_kill = pub.outbox_depth
                broker.stop(kill=True)
                async with asyncio.timeout(10):
                    await first.closed.wait()  # keep what the desk had received before the crash
            while produced < 1200:  # the broker is down: events keep coming into the outbox
                await pub.publish_events(batch_of(produced))
                produced += 25
                await asyncio.sleep(0.002)
            depth_while_down = pub.outbox_depth
            # Restart without the publisher's account, so the desk is subscribed before the publisher
            # can republish (without persistence nobody would receive what came earlier).
            broker.users = {"desk": "desk-pass"}
            broker.start()
            async with subscribed(broker, "callbridge/lab/events/#", **desk) as (_, second):
                collectors.append(second)
                broker.set_users(users)  # SIGHUP: the publisher's next attempt succeeds
                await second.wait_until(lambda c, n=produced: len(ids) >= n, within=30)
                produced = await publish_paced(pub, second, ids, produced, TOTAL)
                async with asyncio.timeout(10):
                    await pub.wait_drained()
            reconnections = pub.connections
    assert in_flight_at_kill > 0 and depth_while_down >= 400 + in_flight_at_kill
    assert reconnections >= 2
    assert_every_event_once_in_call_order(collectors)


def assert_every_event_once_in_call_order(collectors: list[Collector]) -> None:
    events = dedup(collectors)
    assert sorted(e["data"]["n"] for e in events) == list(range(TOTAL))  # every event, exactly once
    per_call: dict[str, list[int]] = defaultdict(list)
    for env in events:
        per_call[env["subject"]].append(env["data"]["n"])
    assert len(per_call) == CALLS
    for call, ns in per_call.items():
        assert ns == sorted(ns), f"events of {call} out of order"
    # a redelivery carries the same id: every received copy of event n has one id
    ids_of: dict[int, set[str]] = defaultdict(set)
    for collector in collectors:
        for _, env in collector.envelopes("callbridge/lab/events/"):
            ids_of[env["data"]["n"]].add(env["id"])
    assert all(len(copies) == 1 for copies in ids_of.values())


async def test_outbox_survives_a_publisher_restart(broker: Mosquitto, tmp_path: Path) -> None:
    dead = settings_for(broker, tmp_path, port=1)  # nothing listens on port 1: the rows stay put
    first = Publisher(dead)
    await first.publish_events([Ping(ts=time.time(), call_id="c9", hotline="119", n=n) for n in range(50)])
    assert first.outbox_depth == 100  # hotline topic + call topic each
    first.outbox.close()  # the process "dies" here

    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        stored_ids = {orjson.loads(p)["id"] for (p,) in db.execute("SELECT payload FROM outbox")}
    assert len(stored_ids) == 50

    second = Publisher(settings_for(broker, tmp_path))
    assert second.outbox_depth == 100
    async with subscribed(broker, "callbridge/lab/events/#") as (_, seen), running(second) as pub:
        await seen.wait_until(lambda c: len(c.messages) >= 50)
        async with asyncio.timeout(5):
            await pub.wait_drained()
        await pub.publish_events([Ping(ts=time.time(), call_id="c9", hotline="119", n=50)])
        await seen.wait_until(lambda c: len(c.messages) >= 51)
    envelopes = [env for _, env in seen.envelopes()]
    assert {e["id"] for e in envelopes[:50]} == stored_ids  # republished with the ids they were stored with
    assert [e["data"]["n"] for e in envelopes] == list(range(51))
    assert [e["seq"] for e in envelopes] == list(range(1, 52))  # seq continues across the restart


async def test_outbox_bound_drops_oldest_state_then_events_and_raises_an_alarm(
    broker: Mosquitto, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, outbox_max_rows=10)
    pub = Publisher(settings)  # not running yet: the broker is "unreachable"
    for i in range(3):
        await pub.set_state(f"queues/q{i}", {"waiting": i})
    await pub.publish_events([Ping(ts=time.time(), hotline="12345", n=n) for n in range(7)])
    assert pub.outbox_depth == 10 and not pub.outbox.full
    result = await pub.publish_events([Ping(ts=time.time(), hotline="12345", n=n) for n in range(7, 12)])
    assert result.became_full and result.dropped_state == 3 and result.dropped_events == 2
    assert pub.outbox.full
    async with subscribed(broker, "callbridge/lab/events/#", "callbridge/lab/state/#") as (_, seen), running(pub):
        await seen.wait_until(lambda c: any("outbox/full" in t for t, _, _ in c.messages))
        await seen.wait_until(lambda c: len(c.messages) >= 11)
    topics = [t for t, _, _ in seen.messages]
    assert not any("/state/" in t for t in topics)  # the state rows went first
    pings = [env["data"]["n"] for t, env in seen.envelopes() if t.endswith("test/ping")]
    assert pings == list(range(2, 12))  # then the two oldest events; the rest in order
    [alarm] = [env for t, env in seen.envelopes() if t == "callbridge/lab/events/_/outbox/full"]
    assert alarm["type"] == "org.callbridge.outbox.full"
    assert alarm["data"]["dropped_state"] == 3 and alarm["data"]["dropped_events"] == 2
    assert alarm["data"]["max_rows"] == 10


def test_outbox_rows_are_written_before_publishing_and_deleted_only_by_ack(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", max_rows=100) as box:
        box.append([OutgoingMessage("t/a", b"1"), OutgoingMessage("t/b", b"2"), OutgoingMessage("t/c", b"3")])
        rows = box.pending()
        assert [r.payload for r in rows] == [b"1", b"2", b"3"]
        assert box.pending(after_seq=rows[0].seq, limit=1)[0].payload == b"2"
        assert box.ack([rows[1].seq]) == 1
        assert box.ack([rows[1].seq]) == 0  # a duplicate PUBACK changes nothing
        assert [r.payload for r in box.pending()] == [b"1", b"3"]
        assert box.depth == 2
    with Outbox(tmp_path / "o.sqlite3") as reopened:
        assert [r.payload for r in reopened.pending()] == [b"1", b"3"]


async def test_stop_returns_even_when_the_broker_is_frozen_and_keeps_unacked_rows(
    broker: Mosquitto, tmp_path: Path
) -> None:
    pub = Publisher(settings_for(broker, tmp_path))
    task = asyncio.create_task(pub.run())
    try:
        async with asyncio.timeout(10):
            await pub.wait_connected()
        broker.pause()
        await pub.publish_events([Ping(ts=time.time(), hotline="120", n=n) for n in range(30)])
        await asyncio.sleep(0.05)
        pub.stop(drain_timeout=0.2)
        async with asyncio.timeout(10):
            await task
        assert pub.outbox_depth == 30  # nothing acknowledged, nothing forgotten
    finally:
        task.cancel()
        broker.resume()
        pub.outbox.close()
