"""Real recorded Asterisk calls, through the real tracker, into the records and the live board."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.ami.event_types import ChannelSnapshot
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.engine.events import (
    CommandReceived,
    ThreewayAgentLeft,
    ThreewayStarted,
    TransferAnswered,
    TransferCompleted,
    TransferNumberVerified,
    TransferRequested,
)
from callbridge.store.kpi import compute
from callbridge.store.live import LiveBoard
from callbridge.store.records import RecordStore
from callbridge.testing.replay import events_from_raw, replay_events

TRACES = ("04_blind_transfer_sip_agent_to_hotline", "09_queue_priority_jump", "21_queue_caller_abandon")


def hotline_of(snap: ChannelSnapshot) -> str | None:
    """The lab's wiring: hotline trunks are PJSIP/hotline-<num>, agents PJSIP/agent*, everything else calls 12345."""
    if snap.channel.startswith("PJSIP/hotline-"):
        return snap.channel.removeprefix("PJSIP/hotline-").split("-")[0]
    if snap.channel.startswith("PJSIP/agent"):
        return None
    return "12345"


def derived_from_traces(traces: Path) -> list[DomainEvent]:
    out: list[DomainEvent] = []
    for name in TRACES:
        events, _ = replay_events(events_from_raw((traces / f"{name}.rx.raw").read_bytes()),
                                  CallTracker(hotline_of=hotline_of))  # fmt: skip
        out += events
    return out


def test_recorded_calls_become_records_and_kpis(traces: Path, store: RecordStore) -> None:
    derived = derived_from_traces(traces)
    offered = [e for e in derived if e.TYPE == "call.offered"]
    assert {e.hotline for e in offered} == {"12345"}
    store.write(derived)
    rows = {r["call_id"]: r for r in store.search_calls(hotline="12345")}
    assert set(rows) == {e.call_id for e in offered} == {"lab-caller", "lab-qA", "lab-qB", "1795919571.0"}
    assert rows["1795919571.0"]["outcome"] == "abandoned"
    assert rows["lab-qB"]["agent"] == "agent1002" and rows["lab-qB"]["wait_s"] == pytest.approx(0.53)
    # the blind transfer: answered first by agent1001, then by the 12345 trunk — still one answered call
    assert rows["lab-caller"]["agent"] == "agent1001" and rows["lab-caller"]["outcome"] == "answered"
    tl = store.call_timeline("lab-caller")
    assert tl is not None
    assert "call.transferred" in [e["type"] for e in tl["events"]]
    assert {leg["channel"].split("-")[0] for leg in tl["legs"]} >= {"PJSIP/agent1001", "PJSIP/hotline"}
    (wait,) = store.backend.query("SELECT * FROM queue_waits WHERE call_id = '1795919571.0'")
    assert wait["outcome"] == "abandoned" and wait["queue"] == "support"
    records = store.period_records(min(e.ts for e in derived) - 1, max(e.ts for e in derived) + 1)
    kpi = compute(records).hotlines["12345"]
    assert (kpi.offered, kpi.answered, kpi.abandoned) == (4, 3, 1)
    assert kpi.answer_rate == pytest.approx(0.75)

    board = LiveBoard(["12345"])
    for e in derived:
        board.feed(e)
    tile = board.snapshot(max(e.ts for e in derived))["hotlines"][0]
    assert (tile["offered_today"], tile["answered_today"], tile["abandoned_today"]) == (4, 3, 1)
    assert tile["waiting"] == 0


def test_engine_events_fill_the_transfer_record(store: RecordStore) -> None:
    hand_over = {
        "transfer_id": "T1", "from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000",
        "agent": "agent1001", "category": "police", "ticket": "W-77", "summary": "dispute", "mode": "three_way",
    }  # fmt: skip
    store.write([
        CommandReceived(ts=10.0, call_id="k1", hotline="12345", verb="transfer", agent="agent1001", source="dtmf",
                        outcome="ok", transfer_id="T1"),
        TransferRequested(ts=10.1, call_id="k1", hotline="12345", source="dtmf", **hand_over),
        TransferAnswered(ts=14.0, call_id="k1", hotline="12345", answered_by="hotline-110", **hand_over),
        TransferNumberVerified(ts=14.0, call_id="k1", hotline="12345", presented_num="13800138000", **hand_over),
        ThreewayStarted(ts=14.5, call_id="k1", hotline="12345", room="cb-3w-T1", **hand_over),
        ThreewayAgentLeft(ts=30.0, call_id="k1", hotline="12345", room="cb-3w-T1", **hand_over),
        TransferCompleted(ts=30.0, call_id="k1", hotline="12345", reason="closed", **hand_over),
    ])  # fmt: skip
    tl = store.call_timeline("k1")
    assert tl is not None
    (x,) = tl["transfers"]
    assert (x["outcome"], x["dest_agent"], x["seen_num"], x["number_verified"]) == (
        "completed", "hotline-110", "13800138000", True)  # fmt: skip
    assert (x["category"], x["ticket"], x["summary"], x["mode"]) == ("police", "W-77", "dispute", "three_way")
    (conf,) = tl["conferences"]
    assert conf["room"] == "cb-3w-T1" and conf["agent_left_at"] is not None
    (cmd,) = store.backend.query("SELECT command, source FROM commands")
    assert cmd == {"command": "transfer", "source": "dtmf"}
