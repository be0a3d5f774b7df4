"""The records writer never blocks its caller; it bounds its queue, alarms once, drains and isolates bad events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from pathlib import Path

from records_scenario import T0, morning

from callbridge.domain import DomainEvent
from callbridge.store.events import RecordsBacklog
from callbridge.store.live import LiveBoard
from callbridge.store.projection import EventRecord
from callbridge.store.records import RecordStore
from callbridge.store.sink import RecordsSink
from callbridge.store.writer import RecordWriter


class GatedStore(RecordStore):
    """A store whose writes wait for a gate (a stalled disk) and refuse events of type 'poison'."""

    def __init__(self, path: Path) -> None:
        super().__init__(RecordStore.sqlite(path).backend)
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[int] = []

    def write(self, events: Iterable[DomainEvent | EventRecord]) -> int:
        batch = list(events)
        assert self.gate.wait(10), "test gate never opened"
        if any(isinstance(e, EventRecord) and e.type == "poison" for e in batch):
            raise ValueError("refused")
        self.batches.append(len(batch))
        return super().write(batch)


def _count(store: RecordStore) -> int:
    return int(store.backend.query("SELECT COUNT(*) AS n FROM events")[0]["n"])


async def test_writes_everything_in_batches(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "r.db")
    events = morning()
    async with RecordWriter(store, bound=1000, batch_size=50) as writer:
        for e in events:
            assert writer.submit(e)
        await asyncio.wait_for(writer.flush(), 10)
        assert writer.written == len(events) and writer.dropped == 0
    assert _count(store) == len(events)
    assert max(store.batches) <= 50 and len(store.batches) >= len(events) // 50


async def test_full_queue_drops_alarms_once_and_rearms(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "r.db")
    store.gate.clear()  # the database stalls
    alarms: list[RecordsBacklog] = []
    writer = RecordWriter(store, bound=10, batch_size=5, on_alarm=alarms.append)
    writer.start()
    ev = EventRecord("call.offered", T0, "c", "12345", {})
    accepted = [writer.submit(ev) for _ in range(40)]  # returns at once although nothing can be written
    # the drain task may already hold one batch (up to 5) in flight; the queue itself holds at most 10
    assert 10 <= sum(accepted) <= 15 and accepted[-1] is False
    assert writer.dropped == 40 - sum(accepted)
    assert len(alarms) == 1 and alarms[0].TYPE == "records.backlog" and alarms[0].bound == 10
    assert writer.alarmed
    store.gate.set()
    await asyncio.wait_for(writer.flush(), 10)
    assert not writer.alarmed  # drained below half: re-armed
    assert _count(store) == sum(accepted)
    store.gate.clear()
    for _ in range(40):
        writer.submit(ev)
    assert len(alarms) == 2  # a new overload is a new alarm
    store.gate.set()
    await writer.aclose(drain_s=10)


async def test_a_refused_event_is_isolated(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "r.db")
    async with RecordWriter(store, batch_size=10, retries=2, retry_delay=0.01) as writer:
        writer.submit(EventRecord("call.offered", T0, "a", "12345", {}))
        writer.submit(EventRecord("poison", T0 + 1, "a", "12345", {}))
        writer.submit(EventRecord("call.ended", T0 + 2, "a", "12345", {}))
        await asyncio.wait_for(writer.flush(), 10)
        assert (writer.written, writer.failed) == (2, 1)
    assert [r["type"] for r in store.backend.query("SELECT type FROM events ORDER BY seq")] == [
        "call.offered", "call.ended"]  # fmt: skip


async def test_records_sink_records_feeds_the_board_and_publishes_alarms(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "r.db")
    published: list[DomainEvent] = []
    changes: list[int] = []
    board = LiveBoard(["110"], min_offered=2)
    writer = RecordWriter(store, bound=5)  # the first part submits exactly 5 before the writer runs
    sink = RecordsSink(writer, board, publish=published.extend, on_change=lambda: changes.append(1))
    writer.on_alarm = sink.backlog_alarm
    async with writer:
        for cid in ("a", "b"):
            sink([EventRecord("call.offered", T0, cid, "110", {}),  # type: ignore[list-item]
                  EventRecord("call.ended", T0 + 5, cid, "110", {})])  # hung up unanswered  # fmt: skip
        await asyncio.wait_for(writer.flush(), 10)
    assert [e.TYPE for e in published] == ["kpi.answer_rate_low"]
    types = [r["type"] for r in store.backend.query("SELECT type FROM events ORDER BY seq")]
    assert types.count("kpi.answer_rate_low") == 1 and types.count("call.offered") == 2
    assert len(changes) == 2
    store.gate.clear()
    async with writer:
        for i in range(10):
            sink([EventRecord("call.offered", T0 + 10 + i, f"x{i}", "110", {})])  # type: ignore[list-item]
        assert published[-1].TYPE == "records.backlog"
        assert board.snapshot(T0 + 30)["alarms"][0]["type"] == "records.backlog"
        store.gate.set()
