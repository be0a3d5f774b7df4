"""Overload (issue 17.5), the AMI side: what is read and not consumed is bounded (the socket is no longer
read: TCP back-pressure toward the PBX), the consumer hands the event loop a turn between slices, and a
Ping reply late behind a flood does not end the session. Real TCP against the scripted AMI server;
behaviour is checked by ordering and counting, never by timing thresholds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from callbridge.ami.client import AmiClient
from callbridge.ami.event_types import AmiEvent
from callbridge.ami.intake import IngestGate
from callbridge.testing.fake_ami import FakeAmi

PAD = b"x" * 400  # about the size of a real event: the flood is larger than the kernel's socket buffers


def flood(count: int, start: int = 0) -> bytes:
    return b"".join(b"Event: FlowTest\r\nPrivilege: system,all\r\nSeq: %d\r\nPad: %s\r\n\r\n" % (i, PAD)
                    for i in range(start, start + count))  # fmt: skip


async def until(what: Callable[[], object], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not what():  # noqa: ASYNC110 - polling the client's own counters, bounded
            await asyncio.sleep(0.005)


def seqs(items: list[object]) -> list[int]:
    return [int(dict(i.headers)["Seq"]) for i in items if isinstance(i, AmiEvent) and hasattr(i, "headers")]


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    async with FakeAmi(secret="s") as server:
        yield server


@contextlib.asynccontextmanager
async def connected(ami: FakeAmi, **kw: float) -> AsyncIterator[AmiClient]:
    client = AmiClient(ami.host, ami.port, "callbridge", "s", **kw)  # type: ignore[arg-type]
    client.start()
    try:
        await client.wait_connected(5)
        yield client
    finally:
        await client.close()


# --- the gate's rules ---------------------------------------------------------------------------------


def test_gate_pauses_at_high_water_and_resumes_at_low_water_once_each() -> None:
    calls: list[str] = []
    now = [100.0]
    gate = IngestGate(high_water=10, low_water=3, clock=lambda: now[0])
    gate.attach(lambda: calls.append("pause"), lambda: calls.append("resume"))
    gate.filled(9)
    assert calls == [] and not gate.paused
    gate.filled(10)
    gate.filled(14)  # still above: paused once, not twice
    assert calls == ["pause"] and gate.paused and gate.pauses == 1
    now[0] += 2.0
    gate.drained(4)  # above low water: stays paused
    assert calls == ["pause"]
    gate.drained(3)
    assert calls == ["pause", "resume"] and not gate.paused
    assert gate.stats()["paused_s"] == 2.0 and gate.stats()["max_queued"] == 14


def test_gate_without_a_session_pauses_nothing_and_a_new_session_starts_unpaused() -> None:
    gate = IngestGate(high_water=2, low_water=1)
    gate.filled(5)
    assert not gate.paused  # nothing attached (between sessions): nothing to pause
    calls: list[str] = []
    gate.attach(lambda: calls.append("pause"), lambda: calls.append("resume"))
    gate.filled(5)
    gate.detach()  # the session ended while paused
    assert not gate.paused
    gate.attach(lambda: calls.append("pause2"), lambda: calls.append("resume2"))
    gate.drained(0)
    assert calls == ["pause"]  # the new session was never paused, so it is not resumed either


def test_gate_counts_items_queued_and_handed_over_from_the_queue_lengths() -> None:
    gate = IngestGate(high_water=100, low_water=10)
    gate.filled(40)
    gate.filled(90)  # 50 more
    gate.drained(26)  # 64 taken
    gate.filled(30)
    gate.drained(0)
    assert (gate.received, gate.consumed) == (94, 94)
    assert gate.stats()["received"] == 94 and gate.stats()["consumed"] == 94


def test_gate_refuses_low_water_at_or_above_high_water() -> None:
    with pytest.raises(ValueError, match="low_water"):
        IngestGate(high_water=5, low_water=5)


def test_keepalive_proof_is_arrivals_or_a_pause() -> None:
    gate = IngestGate(high_water=3, low_water=1)
    gate.attach(lambda: None, lambda: None)
    then = gate.arrivals
    assert not gate.carrying(then)  # silence: a late Ping reply means a dead path
    gate.filled(1)
    assert gate.carrying(then)
    then = gate.arrivals
    gate.filled(3)  # paused: more is waiting behind it
    assert gate.carrying(then + 1)


# --- over TCP -----------------------------------------------------------------------------------------


async def test_a_flood_nobody_consumes_stops_the_reading_and_the_pbx_side_waits(ami: FakeAmi) -> None:
    total = 60_000  # 27 MB
    async with connected(ami) as client:
        client.intake.high_water, client.intake.low_water = 1000, 200
        pushing = asyncio.ensure_future(ami.push_raw(flood(total)))
        await until(lambda: client.intake.paused)
        for _ in range(20):  # let the loop run: nothing more is read while paused
            await asyncio.sleep(0.01)
        queued = client.intake.max_queued
        assert queued < total // 2  # bounded: the rest is in the kernel buffers and at the server
        assert not pushing.done()  # the server's writer waits: back-pressure reached it
        got: list[object] = []
        async for batch in client.batches():
            got.extend(batch)
            if len(got) >= total:
                break
        await asyncio.wait_for(pushing, 10)
        assert seqs(got) == list(range(total))  # every event, in order: nothing shed on the AMI side
        assert client.intake.pauses >= 1 and not client.intake.paused
        assert client.intake.max_queued < total // 2
        # what /readyz counts (the overload benchmark's "processed"): every item queued was handed over
        stats = client.intake.stats()
        assert stats["received"] == stats["consumed"] == len(got)  # the flood and the connection items


async def test_the_consumer_gives_the_loop_a_turn_between_slices(ami: FakeAmi) -> None:
    total = 3_000  # below high water: all of it is read before the consumer starts
    async with connected(ami) as client:
        client.intake.slice_s = 0.0  # every hand-over ends a slice (the rule, without a clock in the test)
        await ami.push_raw(flood(total))
        await until(lambda: client.intake.max_queued >= total)
        consumed = 0
        seen_by_other: list[int] = []

        async def other() -> None:  # e.g. an HTTP request, the MQTT pump: any other task of the loop
            while consumed < total:
                seen_by_other.append(consumed)
                await asyncio.sleep(0)

        other_task = asyncio.ensure_future(other())
        async for batch in client.batches():
            consumed += len(batch)
            if consumed >= total:
                break
        await other_task
        # The other task ran while the read events were being consumed, not only before and after them.
        assert any(0 < n < total for n in seen_by_other), seen_by_other[:5]
        assert client.intake.slices > 0


async def test_a_ping_reply_late_behind_a_flood_keeps_the_session(ami: FakeAmi) -> None:
    async with connected(ami, ping_interval=0.05, ping_timeout=0.05) as client:
        client.intake.high_water, client.intake.low_water = 50, 10
        answered = ami.responders.setdefault("Ping", lambda msg: [])  # the PBX is too busy to answer Pings
        assert answered is not None
        pushing = asyncio.ensure_future(ami.push_raw(flood(20_000)))
        await until(lambda: client.intake.paused)
        pings = len(ami.actions("Ping"))
        await until(lambda: len(ami.actions("Ping")) >= pings + 3)  # pings went unanswered
        assert client.connected  # while reading is paused the path is alive: no keepalive timeout
        pushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pushing
