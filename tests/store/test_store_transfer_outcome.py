"""A transfer's final outcome in the records does not depend on the hotline, the mode, or on whether the
engine was still there to report the end: answered and then the call ended = ``completed`` (SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from callbridge.calls.events import CallAnswered, CallEnded, CallOffered
from callbridge.domain import DomainEvent
from callbridge.engine.events import (
    TransferAnswered,
    TransferCompleted,
    TransferFailed,
    TransferRequested,
    TransferReturned,
    TransferRinging,
)
from callbridge.store.kpi import compute
from callbridge.store.records import RecordStore

CALLER = "13912340001"


def hand_over(xfer: str, to_hotline: str, mode: str) -> dict[str, Any]:
    return {"transfer_id": xfer, "from_hotline": "12345", "to_hotline": to_hotline, "caller_num": CALLER,
            "agent": "agent1001", "category": "emergency", "mode": mode}  # fmt: skip


def answered_transfer(call_id: str, xfer: str, to_hotline: str, mode: str) -> list[DomainEvent]:
    """A 12345 call answered by agent1001 and handed over to ``to_hotline``, whose side answered."""
    x = hand_over(xfer, to_hotline, mode)
    return [
        CallOffered(ts=100.0, call_id=call_id, hotline="12345", caller_num=CALLER),
        CallAnswered(ts=102.0, call_id=call_id, hotline="12345", agent="agent1001", caller_num=CALLER),
        TransferRequested(ts=110.0, call_id=call_id, hotline="12345", source="dtmf", **x),
        TransferRinging(ts=110.1, call_id=call_id, hotline="12345", line=f"{to_hotline}@hotline-{to_hotline}", **x),
        TransferAnswered(ts=111.0, call_id=call_id, hotline="12345", answered_by=f"hotline-{to_hotline}", **x),
    ]


def ended(call_id: str, ts: float = 130.0) -> CallEnded:
    return CallEnded(ts=ts, call_id=call_id, hotline="12345", cause=16, cause_txt="Normal Clearing", answered=True)


def completed(call_id: str, xfer: str, to_hotline: str, mode: str, ts: float = 130.0) -> TransferCompleted:
    x = hand_over(xfer, to_hotline, mode)
    return TransferCompleted(ts=ts, call_id=call_id, hotline="12345", reason="closed", **x)


def transfer_row(store: RecordStore, call_id: str) -> dict[str, Any]:
    """The transfer's raw row (epoch times) plus the timeline's 双边办结 verdict."""
    tl = store.call_timeline(call_id)
    assert tl is not None
    (shown,) = tl["transfers"]
    (row,) = store.backend.query("SELECT * FROM transfers WHERE call_id = ?", (call_id,))
    return {**row, "both_sides_closed": shown["both_sides_closed"]}


DESTINATIONS = [("110", "blind"), ("119", "expert"), ("120", "threeway")]


@pytest.mark.parametrize(("to_hotline", "mode"), DESTINATIONS)
@pytest.mark.parametrize("end", ["engine_first", "call_first", "engine_silent"])
def test_answered_then_call_ended_is_completed_whatever_the_hotline(
    store: RecordStore, to_hotline: str, mode: str, end: str
) -> None:
    events = answered_transfer("k1", "T1", to_hotline, mode)
    if end == "engine_first":  # what the engine does when it sees both sides hang up
        events += [completed("k1", "T1", to_hotline, mode), ended("k1")]
    elif end == "call_first":
        events += [ended("k1"), completed("k1", "T1", to_hotline, mode, ts=130.5)]
    else:  # e.g. the daemon restarted between the answer and the hang-up: only the tracker saw the end
        events += [ended("k1")]
    store.write(events)
    row = transfer_row(store, "k1")
    assert row["outcome"] == "completed"
    assert row["completed_ts"] == 130.0  # the first word on the end counts
    assert row["both_sides_closed"] is True
    assert row["reason"] is None


@pytest.mark.parametrize(("to_hotline", "mode"), DESTINATIONS)
def test_answered_transfer_of_a_call_still_up_stays_answered(store: RecordStore, to_hotline: str, mode: str) -> None:
    store.write(answered_transfer("k1", "T1", to_hotline, mode))
    row = transfer_row(store, "k1")
    assert row["outcome"] == "answered" and row["completed_ts"] is None and row["both_sides_closed"] is False


def test_unanswered_transfer_of_an_ended_call_failed_unless_the_engine_says_otherwise(store: RecordStore) -> None:
    x1, x2 = hand_over("T1", "110", "blind"), hand_over("T2", "110", "blind")
    store.write([
        TransferRequested(ts=10.0, call_id="a", hotline="12345", **x1),
        TransferRinging(ts=10.1, call_id="a", hotline="12345", **x1),
        ended("a", ts=20.0),  # the caller hung up while 110 was ringing; no engine word on it
        TransferRequested(ts=10.0, call_id="b", hotline="12345", **x2),
        ended("b", ts=20.0),
        TransferReturned(ts=20.0, call_id="b", hotline="12345", reason="busy", **x2),  # the engine's word wins
    ])  # fmt: skip
    a = transfer_row(store, "a")
    assert (a["outcome"], a["reason"], a["failed_ts"]) == ("failed", "caller_hangup", 20.0)
    b = transfer_row(store, "b")
    assert (b["outcome"], b["reason"]) == ("returned", "busy")


def test_engine_failure_reason_is_kept_and_a_final_outcome_is_not_reopened(store: RecordStore) -> None:
    x = hand_over("T1", "119", "blind")
    store.write([
        TransferRequested(ts=10.0, call_id="a", hotline="12345", **x),
        TransferFailed(ts=12.0, call_id="a", hotline="12345", reason="congestion", **x),
        ended("a", ts=20.0),
    ])  # fmt: skip
    row = transfer_row(store, "a")
    assert (row["outcome"], row["reason"], row["failed_ts"]) == ("failed", "congestion", 12.0)


def test_transfer_success_kpi_counts_every_hotline_alike(store: RecordStore) -> None:
    events: list[DomainEvent] = []
    for n, (to_hotline, mode) in enumerate(DESTINATIONS):
        call_id, xfer = f"k{n}", f"T{n}"
        events += answered_transfer(call_id, xfer, to_hotline, mode)
        # 119 gets the engine's word, the others only the call's end
        events += [completed(call_id, xfer, to_hotline, mode)] if to_hotline == "119" else []
        events += [ended(call_id)]
    store.write(events)
    report = compute(store.period_records(0.0, 1000.0))
    assert report.transfers_by_pair == {("12345", h): {"completed": 1} for h, _ in DESTINATIONS}
    assert report.hotlines["12345"].transfer_success == 1.0
