"""The one definition of offered / answered / abandoned, rule by rule — and the board and the records agree.

Each story is fed to a live board and written to a records store; the board's tiles and the KPIs computed from
the records must both give the expected (offered, answered, abandoned) per hotline.
"""

from __future__ import annotations

import pytest

from callbridge.store.kpi import compute
from callbridge.store.live import LiveBoard
from callbridge.store.offers import OfferBook
from callbridge.store.record import EventRecord
from callbridge.store.records import RecordStore

T = 1_795_900_000.0  # 2026-11-29 morning (+08:00); only differences matter


def ev(type_: str, dt: float, call_id: str | None, hotline: str | None = None, **data: object) -> EventRecord:
    return EventRecord(type_, T + dt, call_id, hotline, dict(data))


X = {"transfer_id": "X", "from_hotline": "12345", "to_hotline": "110"}

STORIES: dict[str, tuple[list[EventRecord], dict[str, tuple[int, int, int]]]] = {
    "overflow to the remote seats is not an abandon": ([
        ev("call.offered", 0, "c", "12345"),
        ev("queue.joined", 0, "c", "12345", queue="q-12345"),
        ev("queue.abandoned", 20, "c", "12345", queue="q-12345"),  # Asterisk's abandon when the call moves on
        ev("queue.joined", 20, "c", "12345", queue="q-12345-remote"),
        ev("call.answered", 25, "c", "12345", agent="3001@sim", queue="q-12345-remote"),
        ev("call.ended", 90, "c", "12345"),
    ], {"12345": (1, 1, 0)}),
    "back in the queue after an announcement, then answered": ([
        ev("call.offered", 0, "c", "12345"),
        ev("queue.abandoned", 3, "c", "12345", queue="q-12345"),
        ev("queue.joined", 4, "c", "12345", queue="q-12345"),
        ev("call.answered", 6, "c", "12345", agent="agent1001"),
    ], {"12345": (1, 1, 0)}),
    "a caller who gives up and hangs up is lost": ([
        ev("call.offered", 0, "c", "12345"),
        ev("queue.abandoned", 30, "c", "12345", queue="q-12345"),
        ev("call.ended", 30.2, "c", "12345"),
    ], {"12345": (1, 0, 1)}),
    "a transfer in is offered to the receiving hotline and answered there": ([
        ev("call.offered", 0, "c", "12345"),
        ev("call.answered", 5, "c", "12345", agent="agent1001"),
        ev("transfer.requested", 30, "c", "12345", **X),
        ev("transfer.ringing", 31, "c", "12345", **X),
        # the tracker names the call's first hotline on the receiving line's answer: no second answer at 12345
        ev("call.answered", 33, "c", "12345", agent="hotline-110"),
        ev("transfer.answered", 33, "c", "12345", **X),
        ev("call.ended", 200, "c", "12345"),
        ev("transfer.completed", 200, "c", "12345", **X),
    ], {"12345": (1, 1, 0), "110": (1, 1, 0)}),
    "a transfer in that rings out is lost at the receiving hotline": ([
        ev("call.offered", 0, "c", "12345"),
        ev("call.answered", 5, "c", "12345", agent="agent1001"),
        ev("transfer.ringing", 31, "c", "12345", **X),
        ev("transfer.failed", 51, "c", "12345", **X, reason="noanswer"),
        ev("transfer.returned", 52, "c", "12345", **X),
        ev("call.ended", 100, "c", "12345"),
    ], {"12345": (1, 1, 0), "110": (1, 0, 1)}),
    "a refused transfer never reached the destination": ([
        ev("call.offered", 0, "c", "12345"),
        ev("call.answered", 5, "c", "12345", agent="agent1001"),
        ev("transfer.requested", 30, "c", "12345", **X),
        ev("transfer.refused", 30.1, "c", "12345", transfer_id="X", reason="not_permitted"),
        ev("call.ended", 100, "c", "12345"),
    ], {"12345": (1, 1, 0)}),
    "the receiving side under its own call id is the transfer's one offer": ([
        ev("call.offered", 0, "c", "12345"),
        ev("call.answered", 5, "c", "12345", agent="agent1001"),
        ev("transfer.ringing", 31, "c", "12345", **X),
        ev("call.offered", 31, "r", "110", transfer_id="X"),
        ev("call.answered", 35, "r", "110", agent="p1"),
        ev("transfer.answered", 35, "c", "12345", **X),
        ev("call.ended", 100, "r", "110"),
        ev("call.ended", 100, "c", "12345"),
    ], {"12345": (1, 1, 0), "110": (1, 1, 0)}),
    "a three-way leg is its transfer's part, not an offer": ([
        ev("call.offered", 0, "c", "12345"),
        ev("call.answered", 5, "c", "12345", agent="agent1001"),
        ev("threeway.leg_called", 30, "c", "12345", **X, leg_call_id="X-leg0"),
        ev("call.offered", 31, "X-leg0", "110"),
        ev("transfer.ringing", 31, "c", "12345", **X),
        ev("conference.joined", 36, "X-leg0", "110", room="cb-X"),
        ev("transfer.answered", 36, "c", "12345", **X),
        ev("call.ended", 100, "c", "12345"),
        ev("call.ended", 110, "X-leg0", "110"),
    ], {"12345": (1, 1, 0), "110": (1, 1, 0)}),
    "the PBX restarted: what was open stays in progress": ([
        ev("call.offered", 0, "c", "12345"),
        ev("pbx.restarted", 10, None, None),
        ev("call.ended", 11, "c", "12345"),
    ], {"12345": (1, 0, 0)}),
}  # fmt: skip


@pytest.mark.parametrize("story", list(STORIES))
def test_the_board_and_the_records_count_by_the_one_definition(story: str) -> None:
    events, expected = STORIES[story]
    board = LiveBoard()
    for e in events:
        board.feed(e)
    tiles = {t["hotline"]: (t["offered_today"], t["answered_today"], t["abandoned_today"])
             for t in board.snapshot(T + 300)["hotlines"]}  # fmt: skip
    store = RecordStore.sqlite(":memory:")
    store.write(events)
    report = compute(store.period_records(T - 60, T + 3600)).hotlines
    store.close()
    kpis = {h: (k.offered, k.answered, k.abandoned) for h, k in report.items() if k.offered}
    assert {h: n for h, n in tiles.items() if n[0]} == expected
    assert kpis == expected


def test_finished_calls_are_forgotten_and_a_late_duplicate_is_not_offered_again() -> None:
    book = OfferBook()
    assert [c for c, _ in book.feed(ev("call.offered", 0, "c", "12345"))] == ["offered"]
    assert [c for c, _ in book.feed(ev("call.ended", 9, "c", "12345"))] == ["abandoned"]
    assert book.feed(ev("call.offered", 10, "c", "12345")) == []  # a late duplicate of an ended call
    assert book.tracked_calls == 0  # nothing kept for an ended call
