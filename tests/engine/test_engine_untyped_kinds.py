"""Issue 19: the daemon's AMI client leaves out the untyped event kinds nobody downstream reads
(``AmiClient(untyped=UNTYPED_READ)``, in ``App``). Nothing downstream may notice: over every recorded trace, the
tracker and the engine fed only the kinds they read give the same domain events, the same effects and the same
picture as fed every event.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.ami.decode import DECODERS, decode, kinds_read
from callbridge.ami.event_types import AmiEvent, GenericEvent
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls.handlers import HANDLERS
from callbridge.calls.tracker import UNTYPED_READ
from callbridge.domain import DomainEvent
from callbridge.engine.effects import Effect
from tests.conftest import traces_dir
from tests.engine.pbx import Pbx


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".rx.raw") for p in traces_dir().glob("*.rx.raw"))


def run(events: list[AmiEvent]) -> tuple[list[DomainEvent], list[Effect], dict[str, object]]:
    pbx = Pbx()
    derived: list[DomainEvent] = []
    for event in events:
        now = event.timestamp if event.timestamp is not None else pbx.now  # the event's own time, else fixed
        out = pbx.tracker.feed(event, now)
        pbx.engine.on_ami_event(event, out, now)
        derived += out
        pbx.effects += pbx.engine.drain()
    return derived, pbx.take(), pbx.tracker.snapshot()


@pytest.mark.parametrize("scenario", scenarios())
def test_leaving_out_untyped_kinds_nobody_reads_changes_nothing(traces: Path, scenario: str) -> None:
    frames = AmiFramer().feed((traces / f"{scenario}.rx.raw").read_bytes())
    messages = [f for f in frames if isinstance(f, AmiMessage) and f.kind == "event"]
    read = kinds_read(UNTYPED_READ)
    every = [decode(m) for m in messages]
    kept = [decode(m) for m in messages if m.name in read]
    derived_all, effects_all, picture_all = run(every)
    derived_kept, effects_kept, picture_kept = run(kept)
    assert derived_kept == derived_all
    assert effects_kept == effects_all
    assert picture_kept == picture_all


def test_the_tracker_reads_untyped_kinds_by_name_only() -> None:
    """A handler keyed on GenericEvent would read every untyped kind, and the client's filter would hide events
    from it: the kinds it reads must be named in UNTYPED_READ instead."""
    assert GenericEvent not in HANDLERS
    assert kinds_read(UNTYPED_READ) >= UNTYPED_READ | set(DECODERS)
