"""What must hold for every trace (recorded, minimal case, live): the picture a consumer builds is sound.

Checked from the AMI events themselves, not from the tracker's own view: exactly one ``call.ended`` per
call, nothing left in the tracker, one outcome per transfer, and no Local hop (a Local channel with a real
channel behind it) ever named as a party.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.testing.replay import TICK_S, events_from_raw
from tests.calls.traces import all_fixture_traces

TRACES = all_fixture_traces()
# Event fields that name a party's channel.
PARTY_FIELDS = ("agent_channel", "answered_channel")


def _local_hops(events: list[ami.AmiEvent]) -> set[str]:
    """Names of Local channels that only stand in front of someone: their other half dialled a channel or was
    bridged with a non-Local one. Both halves of such a pair are hops."""
    hops: set[str] = set()
    bridges: dict[str, set[str]] = {}
    for ev in events:
        if isinstance(ev, ami.DialBegin) and ev.snap is not None and ev.snap.is_local:
            hops.add(ev.snap.channel)
        elif isinstance(ev, ami.BridgeEnter):
            bridges.setdefault(ev.bridge.bridge_id, set()).add(ev.snap.channel)
    for members in bridges.values():
        if any(not m.startswith("Local/") for m in members):
            hops.update(m for m in members if m.startswith("Local/") and m.endswith(";2"))
    pairs = set()
    for name in hops:
        if name[-2:] in (";1", ";2"):
            pairs.add(name[:-1] + "1")
            pairs.add(name[:-1] + "2")
    return pairs


def _replay(path: Path) -> tuple[list[ami.AmiEvent], list[DomainEvent], CallTracker, list[str]]:
    events = list(events_from_raw(path.read_bytes()))
    tracker = CallTracker()
    derived: list[DomainEvent] = []
    hop_parties: list[str] = []
    hops = _local_hops(events)
    for i, ev in enumerate(events):
        derived.extend(tracker.feed(ev, now=ev.timestamp if ev.timestamp is not None else i * TICK_S))
        for call_id in tracker.calls:
            hop_parties += [p.name for p in tracker.parties(call_id) if p.name in hops and p.role != "caller"]
    return events, derived, tracker, hop_parties


@pytest.mark.parametrize("path", TRACES, ids=[f"{p.parent.name}/{p.name.removesuffix('.rx.raw')}" for p in TRACES])
def test_every_fixture_keeps_the_call_invariants(path: Path) -> None:
    events, derived, tracker, hop_parties = _replay(path)
    calls = {e.call_id for e in derived if e.TYPE.startswith("call.")}
    ended = Counter(e.call_id for e in derived if e.TYPE == "call.ended")
    assert all(ended[c] == 1 for c in calls), f"call.ended per call: {dict(ended)} for {sorted(calls)}"
    assert not tracker.calls and not tracker.channels, "the trace ends with everything hung up"
    for call_id in calls:
        transfers = [e for e in derived if e.call_id == call_id and e.TYPE == "call.transferred"]
        outcomes = [e for e in derived if e.call_id == call_id and e.TYPE == "call.transfer_ended"]
        assert len(outcomes) == len(transfers), f"{call_id}: {len(transfers)} transfers, {len(outcomes)} outcomes"
        for xfer, outcome in zip(transfers, outcomes, strict=True):
            assert derived.index(xfer) < derived.index(outcome)
            assert (outcome.data()["transferer"], outcome.data()["target"]) == (xfer.data()["transferer"],
                                                                                xfer.data()["target"])
    hops = _local_hops(events)
    named = [str(e.data()[f]) for e in derived for f in PARTY_FIELDS if f in e.data()]
    named += [str(e.data()["target"]) for e in derived
              if e.TYPE in ("call.transferred", "call.transfer_ended") and e.data()["kind"] == "attended"]
    assert not [n for n in named if n in hops], "a Local hop was reported as a party"
    assert not hop_parties, f"tracker.parties() listed Local hops: {sorted(set(hop_parties))}"


def test_the_invariants_cover_every_kind_of_fixture() -> None:
    kinds = {p.parent.name for p in TRACES}
    assert "traces-cases" in kinds and len(TRACES) > 20
