"""The service hands domain events to the sinks once per loop iteration, in order, and never loses them.

AMI events are recorded from the scripted PBX, then played to a fresh engine through ``consume`` over a
queue-backed stream (as :meth:`AmiClient.stream` delivers them); a reference PBX fed the same events
directly says which domain events, in which order, the sinks must see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence

from callbridge.ami.actions import Action
from callbridge.ami.decode import decode_headers
from callbridge.ami.event_types import AmiEvent
from callbridge.domain import DomainEvent
from callbridge.engine.effects import Publish
from callbridge.runtime.engine_service import EngineService
from tests.engine.pbx import Chan, Pbx

TIMEOUT = 5.0


class RecordingPbx(Pbx):
    """Only records the typed AMI events its building blocks would feed (no tracker, no engine)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.recorded: list[AmiEvent] = []

    def feed(self, name: str, headers: dict[str, str]) -> list[DomainEvent]:
        self.recorded.append(decode_headers(name, headers))
        return []

    def take_recorded(self) -> list[AmiEvent]:
        out, self.recorded = self.recorded, []
        return out


def expected_events(events: Sequence[AmiEvent]) -> list[DomainEvent]:
    """What the sinks must receive, in order: the tracker's events, then the engine's, per AMI event."""
    ref = Pbx()
    out: list[DomainEvent] = []
    for event in events:
        derived = ref.tracker.feed(event, ref.now)
        ref.engine.on_ami_event(event, derived, ref.now)
        out += derived
        out += [e.event for e in ref.engine.drain() if isinstance(e, Publish)]
    return out


class OrderedAmi:
    """Records each action in ``log`` the moment it is written (before any await)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def write_now(self, action: Action) -> Awaitable[object]:
        self.log.append(f"send:{action.name}")
        return self.reply()

    async def reply(self) -> object:
        await asyncio.sleep(0)
        return object()


class Feed:
    """A single-consumer stream like AmiClient.stream(): items pushed now are consumed without a yield."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    def push(self, items: Sequence[object]) -> None:
        for item in items:
            self.queue.put_nowait(item)

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def stream(self) -> AsyncIterator[object]:
        while (item := await self.queue.get()) is not None:
            yield item


def calls(rec: RecordingPbx, first: int, count: int) -> list[Chan]:
    agents = []
    for seq in range(first, first + count):
        caller = rec.call(num=f"1391234{seq:04d}", seq=seq)
        agents.append(rec.answer_by(caller, endpoint=f"agent{1000 + seq}", seq=seq))
    return agents


class Batches(list[list[DomainEvent]]):
    """What the sink received, one entry per call; ``reached(n)`` waits for the n-th call."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    async def reached(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self) < count:
                self.changed.clear()
                await self.changed.wait()


def build(log: list[str] | None = None) -> tuple[EngineService, Pbx, Batches]:
    pbx = Pbx()
    batches = Batches()

    def sink(events: Sequence[DomainEvent]) -> None:
        batches.append(list(events))
        batches.changed.set()
        if log is not None:
            log.append(f"sink:{len(events)}")

    svc = EngineService(pbx.engine, pbx.tracker, OrderedAmi(log if log is not None else []), [sink],
                        clock=lambda: pbx.now)  # fmt: skip
    return svc, pbx, batches


async def test_events_available_together_reach_each_sink_in_one_call_in_order() -> None:
    rec = RecordingPbx()
    calls(rec, 1, 10)
    first = rec.take_recorded()
    calls(rec, 11, 5)
    second = rec.take_recorded()
    svc, _pbx, batches = build()
    feed = Feed()
    consumer = asyncio.create_task(svc.consume(feed.stream()))
    feed.push(first)
    await batches.reached(1)
    feed.push(second)
    await batches.reached(2)
    feed.end()
    async with asyncio.timeout(TIMEOUT):
        await consumer
    want = expected_events(first + second)
    assert len(first) == 50 and len(batches[0]) >= 10  # 50 AMI events, one domain event or more per call
    assert batches[0] + batches[1] == want  # per-call and global order as if handed over one by one
    assert len(batches[0]) == len(expected_events(first))  # batch boundary = what was available together


async def test_the_transfer_action_is_written_before_the_batch_reaches_the_sinks() -> None:
    rec = RecordingPbx()
    [agent] = calls(rec, 1, 1)
    setup = rec.take_recorded()
    rec.press(agent, "*1")
    press = rec.take_recorded()
    log: list[str] = []
    svc, _pbx, batches = build(log)
    feed = Feed()
    consumer = asyncio.create_task(svc.consume(feed.stream()))
    feed.push(setup)
    await batches.reached(1)
    log.clear()
    feed.push(press)
    await batches.reached(2)
    feed.end()
    async with asyncio.timeout(TIMEOUT):
        await consumer
        await svc.idle()
    assert log[0] == "send:Setvar" and log.index("sink:" + str(len(batches[1]))) > 0
    assert "transfer.requested" in [e.TYPE for e in batches[1]]


async def test_the_end_of_the_stream_flushes_without_another_loop_iteration() -> None:
    rec = RecordingPbx()
    calls(rec, 1, 3)
    events = rec.take_recorded()
    svc, _pbx, batches = build()
    feed = Feed()
    feed.push(events)
    feed.end()
    async with asyncio.timeout(TIMEOUT):
        await svc.consume(feed.stream())  # consumed in one step: the end flushes, not the scheduled callback
    assert batches == [expected_events(events)]
    await asyncio.sleep(0)
    assert len(batches) == 1  # the cancelled scheduled flush does not hand anything over twice


async def test_close_flushes_what_is_buffered_and_emit_is_immediate_and_ordered() -> None:
    rec = RecordingPbx()
    calls(rec, 1, 4)
    events = expected_events(rec.take_recorded())
    assert len(events) >= 4
    svc, _pbx, batches = build()
    svc.buffer(events[:1])
    assert batches == []  # waits for the end of this loop iteration
    svc.emit(events[1:2])
    assert batches == [events[:2]]  # emit hands over now, behind what was buffered
    svc.buffer(events[2:])
    svc.close()
    assert batches == [events[:2], events[2:]]
