"""A three-way leg callbridge called in is its transfer's leg in the records and on the board, not a citizen's
call: never a presentation of its own at the destination hotline — yet kept and linked. The destination is
offered the *citizen's call*, by the transfer (it rings there), and answers it when the leg joins the room."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.calls import events as ce
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.store import schema
from callbridge.store.kpi import KpiReport, compute
from callbridge.store.live import LiveBoard
from callbridge.store.records import RecordStore

T = 1_790_000_000.0
CITIZEN = "13700000031"
XFER = {"transfer_id": "x7", "from_hotline": "12345", "to_hotline": "120", "caller_num": CITIZEN,
        "agent": "agent1001", "mode": "threeway", "category": "medical"}  # fmt: skip


def hand_over(*, leg_answers: bool = True, announce_first: bool = True) -> list[DomainEvent]:
    """The citizen's call to 12345, answered, handed over to 120 in a three-way; everybody hangs up."""
    citizen = [
        ce.CallOffered(ts=T, call_id="c1", hotline="12345", caller_num=CITIZEN, channel="PJSIP/carrier-1"),
        ce.CallAnswered(ts=T + 5, call_id="c1", hotline="12345", agent="agent1001", agent_channel="PJSIP/agent1001-1",
                        wait_s=5.0, caller_num=CITIZEN),
        ev.TransferRequested(ts=T + 30, call_id="c1", hotline="12345", **XFER),
        ev.ThreewayStarted(ts=T + 31, call_id="c1", hotline="12345", room="cb-x7", **XFER),
    ]  # fmt: skip
    called = [ev.ThreewayLegCalled(ts=T + 31, call_id="c1", hotline="12345", room="cb-x7", leg_call_id="x7-leg0",
                                   **{**XFER, "line": "PJSIP/120@hotline-120"})]  # fmt: skip
    # at the PBX the leg is a call of its own (own Linkedid), offered to 120, presenting the citizen's number
    leg: list[DomainEvent] = [
        ce.CallOffered(ts=T + 32, call_id="x7-leg0", hotline="120", caller_num=CITIZEN, channel="PJSIP/hotline-120-5",
                       context="cb-conf"),
        ev.TransferRinging(ts=T + 33, call_id="c1", hotline="12345", connected_num=CITIZEN, **XFER),
    ]  # fmt: skip
    if leg_answers:
        leg += [
            ce.ConferenceJoined(ts=T + 40, call_id="x7-leg0", hotline="120", room="cb-x7",
                                channel="PJSIP/hotline-120-5", party_num=CITIZEN, count=3),
            ev.TransferAnswered(ts=T + 40, call_id="c1", hotline="12345", answered_by="PJSIP/hotline-120-5", **XFER),
            ev.ThreewayAgentLeft(ts=T + 41, call_id="c1", hotline="12345", room="cb-x7", **XFER),
        ]  # fmt: skip
    else:  # the line rang out: the transfer went back to the agent
        leg += [ev.TransferReturned(ts=T + 60, call_id="c1", hotline="12345", reason="noanswer", **XFER)]
    end = [
        ce.CallEnded(ts=T + 200, call_id="c1", hotline="12345", answered=True, caller_num=CITIZEN),
        ce.CallEnded(ts=T + 210, call_id="x7-leg0", hotline="120", answered=False, caller_num=CITIZEN),
    ]
    return [*citizen, *called, *leg, *end] if announce_first else [*citizen, *leg, *called, *end]


def kpis(store: RecordStore) -> KpiReport:
    return compute(store.period_records(T - 60, T + 3600))


@pytest.mark.parametrize("leg_answers", [True, False], ids=["leg-joined", "leg-rang-out"])
def test_the_leg_is_not_a_call_of_the_destination_hotline(store: RecordStore, leg_answers: bool) -> None:
    store.write(hand_over(leg_answers=leg_answers))
    report = kpis(store)
    citizen, ambulance = report.hotlines["12345"], report.hotlines["120"]
    assert (citizen.offered, citizen.answered, citizen.abandoned, citizen.answer_rate) == (1, 1, 0, 1.0)
    # 120 was offered the citizen's call once (the transfer rang there), not the leg as well
    answered = int(leg_answers)
    assert (ambulance.offered, ambulance.answered, ambulance.abandoned, ambulance.in_progress) == (
        1, answered, 1 - answered, 0)  # fmt: skip
    assert ambulance.answer_rate == answered and ambulance.transfers_in == 1
    # kept and linked to its transfer: answered when it joined the room, else ended unanswered
    [leg] = store.search_calls(call_id="x7-leg0")
    expected = "answered" if leg_answers else "unanswered"
    assert (leg["kind"], leg["transfer_id"], leg["hotline"], leg["outcome"]) == ("threeway_leg", "x7", "120", expected)
    assert (leg["answered_at"] is not None) is leg_answers and leg["ended_at"] is not None
    [citizen_row] = store.search_calls(call_id="c1")
    assert citizen_row["kind"] is None  # a citizen's call


def test_the_leg_is_part_of_the_timeline_from_either_side(store: RecordStore) -> None:
    store.write(hand_over())
    for asked in ("c1", "x7-leg0"):
        tl = store.call_timeline(asked)
        assert tl is not None and set(tl["linked_call_ids"]) == {"c1", "x7-leg0"}
        assert [t["transfer_id"] for t in tl["transfers"]] == ["x7"]
        types = [e["type"] for e in tl["events"]]
        assert types.index("threeway.leg_called") < types.index("call.offered", types.index("threeway.leg_called"))


def test_the_same_records_when_the_announcement_is_written_after_the_offer(store: RecordStore) -> None:
    store.write(hand_over(announce_first=False))
    assert (kpis(store).hotlines["120"].offered, kpis(store).hotlines["12345"].offered) == (1, 1)
    [leg] = store.search_calls(call_id="x7-leg0")
    assert (leg["kind"], leg["transfer_id"]) == ("threeway_leg", "x7")


def test_a_call_transferred_in_under_its_own_id_without_announcement_still_counts(store: RecordStore) -> None:
    """The receiving side on another PBX (a new Linkedid there) is a real presentation to its hotline."""
    store.write([
        ce.CallOffered(ts=T, call_id="r1", hotline="120", caller_num=CITIZEN, channel="PJSIP/trunk-1"),
        ce.CallEnded(ts=T + 20, call_id="r1", hotline="120", answered=False, caller_num=CITIZEN),
    ])  # fmt: skip
    ambulance = kpis(store).hotlines["120"]
    assert (ambulance.offered, ambulance.abandoned, ambulance.answer_rate) == (1, 1, 0.0)


def test_the_board_counts_citizens_calls_only() -> None:
    board = LiveBoard(["12345", "120"])
    for e in hand_over(leg_answers=False)[:-3]:  # the 120 line rings, both still on the line
        board.feed(e)
    tiles = {t["hotline"]: t for t in board.snapshot(T + 50)["hotlines"]}
    assert (tiles["120"]["offered_today"], tiles["120"]["waiting"], tiles["120"]["answer_rate_today"]) == (1, 0, None)
    assert (tiles["12345"]["offered_today"], tiles["12345"]["answered_today"]) == (1, 1)
    for e in hand_over(leg_answers=False)[-3:]:  # it rang out (back to the agent); the leg's own end is no loss
        board.feed(e)
    tiles = {t["hotline"]: t for t in board.snapshot(T + 300)["hotlines"]}
    assert (tiles["120"]["offered_today"], tiles["120"]["abandoned_today"], tiles["120"]["answer_rate_today"]) == (
        1, 1, 0.0)  # fmt: skip
    assert board.offered_total["120"] == 1 and board.abandoned_total["120"] == 1
    assert tiles["12345"]["answer_rate_today"] == 1.0


@pytest.fixture
def version_1_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A records file written by a daemon that knew only migration 1, with one call in it."""
    path = tmp_path / "old.db"
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old = RecordStore.sqlite(path)
        assert old.schema_versions() == [1]
        old.backend.execute("INSERT INTO calls (call_id, hotline, caller_num, offered_ts, answered_ts, wait_s, outcome)"
                            " VALUES ('c1', '12345', ?, ?, ?, 5.0, 'answered')", (CITIZEN, T, T + 5))
        for ts, type_ in ((T, "call.offered"), (T + 5, "call.answered")):  # and the timeline it kept of that call
            old.backend.execute("INSERT INTO events (ts, type, call_id, hotline, data) VALUES (?, ?, 'c1', '12345', ?)",
                                (ts, type_, f'{{"caller_num": "{CITIZEN}"}}'))
        old.close()
    yield path


def test_an_old_records_file_is_migrated_and_its_calls_still_count(version_1_file: Path) -> None:
    store = RecordStore.sqlite(version_1_file)
    assert store.schema_versions() == [1, 2, 3]  # 3: hand-over feedback (store/feedback.py)
    assert store.search_calls(call_id="c1")[0]["kind"] is None
    store.write(hand_over()[2:])
    assert (kpis(store).hotlines["12345"].offered, kpis(store).hotlines["120"].offered) == (1, 1)
    store.close()
