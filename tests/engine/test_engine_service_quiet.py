"""Issue 19: the service calls the engine only for AMI events it can act on (``Engine.reads_itself``, or a
domain event derived from it); for the rest of the stream (most of it) the tracker alone runs.

The claim behind the shortcut is checked over every recorded trace: an event of a kind the engine does not read
itself that derived no domain event leaves the engine without an effect; and the sinks receive what the
reference (every event through tracker and engine) publishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from callbridge.ami.decode import decode
from callbridge.ami.event_types import AmiEvent, GenericEvent, VarSet
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.domain import DomainEvent
from callbridge.engine.core import Engine
from callbridge.runtime.engine_service import EngineService
from tests.conftest import traces_dir
from tests.engine.pbx import Pbx
from tests.engine.test_engine_service_batching import OrderedAmi, expected_events


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".rx.raw") for p in traces_dir().glob("*.rx.raw"))


def trace(traces: Path, scenario: str) -> list[AmiEvent]:
    frames = AmiFramer().feed((traces / f"{scenario}.rx.raw").read_bytes())
    return [decode(f) for f in frames if isinstance(f, AmiMessage) and f.kind == "event"]


@pytest.mark.parametrize("scenario", scenarios())
def test_an_event_the_engine_does_not_read_and_that_derived_nothing_has_no_effect(traces: Path,
                                                                                   scenario: str) -> None:
    pbx = Pbx()
    quiet = 0
    for event in trace(traces, scenario):
        derived = pbx.tracker.feed(event, pbx.now)
        pbx.engine.on_ami_event(event, derived, pbx.now)
        effects = pbx.engine.drain()
        if not derived and not pbx.engine.reads_itself(type(event)):
            assert effects == [], (scenario, event)
            quiet += 1
    assert quiet or scenario.startswith("01a")


class CountingEngine(Engine):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[str] = []

    def on_ami_event(self, event: AmiEvent, derived: Sequence[DomainEvent], now: float) -> None:
        self.seen.append(event.event_name)
        super().on_ami_event(event, derived, now)


async def _batches(events: list[AmiEvent]) -> AsyncIterator[list[object]]:
    for i in range(0, len(events), 64):
        yield list(events[i : i + 64])
        await asyncio.sleep(0)


@pytest.mark.parametrize("scenario", scenarios())
async def test_the_sinks_get_what_every_event_through_the_engine_gives(traces: Path, scenario: str) -> None:
    events = [e for e in trace(traces, scenario) if type(e).__name__ != "UserEvent"]  # no transfer of ours runs
    pbx = Pbx()
    engine = CountingEngine(pbx.plan, pbx.tracker, new_id=lambda: "x1")
    got: list[DomainEvent] = []
    svc = EngineService(engine, pbx.tracker, OrderedAmi([]), [got.extend], clock=lambda: pbx.now)
    await svc.consume_batches(_batches(events))
    want = expected_events(events)
    if any(e.TYPE.startswith("transfer.") for e in want):
        pytest.skip("a DTMF code starts a transfer: its action results (none here) would differ from the reference")
    assert got == want
    assert len(engine.seen) <= len(events)


async def test_the_engine_is_not_called_for_what_it_does_not_read() -> None:
    pbx = Pbx()
    engine = CountingEngine(pbx.plan, pbx.tracker, new_id=lambda: "x1")
    svc = EngineService(engine, pbx.tracker, OrderedAmi([]), [], clock=lambda: pbx.now)
    assert not engine.reads_itself(VarSet) and not engine.reads_itself(GenericEvent)
    unknown = decode(AmiMessage((("Event", "VarSet"), ("Uniqueid", "nobody"), ("Variable", "X"), ("Value", "1"))))
    await svc.consume_batches(_batches([unknown]))
    assert engine.seen == []  # a VarSet of an unknown channel derives nothing and the engine reads none itself
