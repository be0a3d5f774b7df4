"""The live board agrees with the records for the same morning, and raises its alarm once per crossing."""

from __future__ import annotations

import pytest
from records_scenario import END, EXPECTED, PERIOD, TZ, at, morning

from callbridge.store.events import AnswerRateLow
from callbridge.store.kpi import compute
from callbridge.store.live import LiveBoard
from callbridge.store.periods import parse_period
from callbridge.store.projection import EventRecord
from callbridge.store.records import RecordStore


def _fed(board: LiveBoard) -> list[AnswerRateLow]:
    raised = []
    for e in morning():
        raised += board.feed(e)
    return [a for a in raised if isinstance(a, AnswerRateLow)]


def test_board_matches_records_of_the_morning() -> None:
    board = LiveBoard(["12345", "110", "120"], tz=TZ)
    alarms = _fed(board)
    snap = board.snapshot(END)
    tiles = {t["hotline"]: t for t in snap["hotlines"]}
    for hotline, exp in EXPECTED.items():
        tile = tiles[hotline]
        assert tile["offered_today"] == exp["offered"]
        assert tile["answered_today"] == exp["answered"]
        assert tile["abandoned_today"] == exp["abandoned"]
        assert tile["answer_rate_today"] == pytest.approx(exp["answer_rate"])
        assert tile["wait_p90_s"] == pytest.approx(exp["wait_p90_s"])
        assert tile["below_target"] is exp["below_target"]
    assert tiles["12345"]["waiting"] == 2
    assert tiles["12345"]["longest_wait_s"] == pytest.approx(119.5)  # c11 queued at 08:58:00.5
    assert (tiles["12345"]["agents_free"], tiles["12345"]["agents_total"]) == (2, 3)
    assert (tiles["110"]["agents_free"], tiles["110"]["agents_total"]) == (1, 2)
    assert tiles["110"]["overflow_active"] is False and tiles["12345"]["overflow_active"] is True
    # Alarms are raised when a call is lost, not while calls still wait: 110 crossed (p5 abandoned,
    # 4 of 6 with the transfer in; at 4 of 5 it was on the line); 12345 stayed at 8 of 10 finished calls,
    # i.e. on the line, not under it — and its tile agrees (the two calls still waiting are shown as
    # waiting, not as lost).
    assert tiles["12345"]["answer_rate_today"] == pytest.approx(0.8) and tiles["12345"]["below_target"] is False
    assert [(a.hotline, a.offered, a.answered) for a in alarms] == [("110", 6, 4)]
    assert [a["type"] for a in snap["alarms"]][-1] == "transfer.backup_line"  # oldest shown last
    assert {a["type"] for a in snap["alarms"]} >= {"kpi.answer_rate_low", "transfer.failed", "nuisance.flagged"}
    assert {(f["from"], f["to"]): (f["active"], f["today"]) for f in snap["flows"]} == {
        ("110", "122"): (0, 1), ("12345", "110"): (0, 1), ("12345", "119"): (0, 1), ("12345", "120"): (0, 1),
    }  # fmt: skip
    assert board.transfers_total[("12345", "120", "completed")] == 1
    assert board.number_checks_total[("12345", "120", "mismatch")] == 1
    assert board.overflow_seconds_total == {"110": 15 * 60}


def test_board_and_kpi_report_agree() -> None:
    store = RecordStore.sqlite(":memory:")
    store.write(morning())
    period = parse_period(PERIOD, now=END, tz=TZ)
    report = compute(store.period_records(period.start, period.end))
    board = LiveBoard(tz=TZ)
    _fed(board)
    for tile in board.snapshot(END)["hotlines"]:
        kpi = report.hotlines[tile["hotline"]]
        assert (tile["offered_today"], tile["answered_today"], tile["abandoned_today"]) == (
            kpi.offered, kpi.answered, kpi.abandoned)  # fmt: skip
        assert kpi.wait_avg_s is not None
        assert tile["wait_avg_s"] == pytest.approx(round(kpi.wait_avg_s, 1))


def test_alarm_rearms_after_recovery_and_counts_reset_at_midnight() -> None:
    board = LiveBoard(min_offered=2, targets={"122": 0.5}, tz=TZ)
    raised: list[object] = []

    def call(cid: str, minute: float, answered: bool) -> None:
        raised.extend(board.feed(EventRecord("call.offered", at(minute), cid, "122", {"caller_num": "1"})))
        kind = "call.answered" if answered else "queue.abandoned"
        raised.extend(board.feed(EventRecord(kind, at(minute) + 10, cid, "122", {})))
        raised.extend(board.feed(EventRecord("call.ended", at(minute) + 11, cid, "122", {})))

    call("a", 1, False)  # 0/1: too few calls to judge
    call("b", 2, False)  # 0/2 → alarm
    call("c", 3, False)  # still under: no repeat
    assert len(raised) == 1
    call("d", 4, True)
    call("e", 5, True)
    call("f", 6, True)  # 3/6 = 0.5, back on target: re-armed
    call("g", 7, False)  # 3/7 under again → second alarm
    assert [round(a.rate, 2) for a in raised] == [0.0, 0.43]  # type: ignore[attr-defined]
    tomorrow = at(24 * 60 + 1)
    assert board.snapshot(tomorrow)["hotlines"][0]["offered_today"] == 0
    board.feed(EventRecord("call.offered", tomorrow, "h", "122", {}))
    assert board.snapshot(tomorrow)["hotlines"][0]["offered_today"] == 1
    assert board.offered_total["122"] == 8  # the Prometheus counters never reset


def test_active_transfer_shows_as_a_flow_until_final() -> None:
    board = LiveBoard(["12345", "110"])
    x = {"transfer_id": "X9", "from_hotline": "12345", "to_hotline": "110"}
    board.feed(EventRecord("transfer.requested", 100.0, "c", "12345", x))
    board.feed(EventRecord("transfer.ringing", 101.0, "c", "12345", x))
    snap = board.snapshot(102.0)
    assert snap["flows"] == [{"from": "12345", "to": "110", "active": 1, "today": 1}]
    assert snap["active_transfers"][0]["state"] == "ringing"
    board.feed(EventRecord("transfer.completed", 110.0, "c", "12345", {"transfer_id": "X9"}))
    assert board.snapshot(111.0)["flows"][0]["active"] == 0
    assert board.transfers_total[("12345", "110", "completed")] == 1


def test_call_end_and_pbx_restart_clear_what_is_in_progress() -> None:
    board = LiveBoard(["12345", "110"])
    x = {"transfer_id": "X1", "from_hotline": "12345", "to_hotline": "110"}
    board.feed(EventRecord("transfer.requested", 100.0, "c1", "12345", x))
    board.feed(EventRecord("call.ended", 120.0, "c1", "12345", {}))
    assert board.snapshot(121.0)["active_transfers"] == []
    board.feed(EventRecord("call.offered", 130.0, "c2", "110", {}))
    board.feed(EventRecord("queue.joined", 130.0, "c2", "110", {"queue": "q-110"}))
    board.feed(EventRecord("transfer.requested", 131.0, "c3", "12345", {**x, "transfer_id": "X2"}))
    assert board.snapshot(132.0)["hotlines"][1]["waiting"] == 1
    board.feed(EventRecord("pbx.restarted", 140.0, None, None, {"phase": "shutdown"}))
    snap = board.snapshot(141.0)
    assert snap["hotlines"][1]["waiting"] == 0 and snap["active_transfers"] == []
    assert snap["alarms"][0]["type"] == "pbx.restarted"


def test_first_waiting_call_of_the_day_does_not_turn_the_tile_red() -> None:
    board = LiveBoard(["110"], min_offered=1, tz=TZ)
    raised = board.feed(EventRecord("call.offered", at(0), "w1", "110", {"caller_num": "13700000001"}))
    raised += board.feed(EventRecord("queue.joined", at(0) + 0.5, "w1", "110", {"queue": "q-110"}))
    (tile,) = board.snapshot(at(1))["hotlines"]
    assert (tile["waiting"], tile["offered_today"], tile["answered_today"], tile["abandoned_today"]) == (1, 1, 0, 0)
    assert tile["answer_rate_today"] is None  # nothing finished yet: no rate, not 0 %
    assert tile["below_target"] is False and raised == []
    # answered: 1 of 1; a second call waiting meanwhile changes nothing
    board.feed(EventRecord("call.answered", at(1), "w1", "110", {"agent": "p1", "wait_s": 60.0}))
    board.feed(EventRecord("call.offered", at(2), "w2", "110", {}))
    board.feed(EventRecord("queue.joined", at(2), "w2", "110", {"queue": "q-110"}))
    (tile,) = board.snapshot(at(3))["hotlines"]
    assert (tile["answer_rate_today"], tile["below_target"], tile["waiting"]) == (1.0, False, 1)
    # leaving the queue is not yet losing the call (overflow moves it on to the remote seats) …
    raised = board.feed(EventRecord("queue.abandoned", at(4), "w2", "110", {"queue": "q-110"}))
    (tile,) = board.snapshot(at(4))["hotlines"]
    assert (tile["answer_rate_today"], tile["abandoned_today"], tile["waiting"], raised) == (1.0, 0, 0, [])
    # … only when the caller who gave up hangs up is the call lost: 1 of 2, red, and the alarm is raised
    raised = board.feed(EventRecord("call.ended", at(4) + 0.2, "w2", "110", {"cause": "caller_hangup"}))
    (tile,) = board.snapshot(at(5))["hotlines"]
    assert (tile["answer_rate_today"], tile["below_target"], tile["waiting"]) == (0.5, True, 0)
    assert [(a.hotline, a.rate) for a in raised if isinstance(a, AnswerRateLow)] == [("110", 0.5)]


def test_board_and_report_use_the_same_answer_rate_with_calls_waiting() -> None:
    """The same day, with calls still waiting at the end: tile and KPI report give the same rate and verdict."""
    events = [
        EventRecord("call.offered", at(0), "a", "122", {}),
        EventRecord("call.answered", at(0) + 20, "a", "122", {"agent": "t1"}),
        EventRecord("call.offered", at(1), "b", "122", {}),
        EventRecord("queue.abandoned", at(1) + 90, "b", "122", {"queue": "q-122"}),
        EventRecord("call.ended", at(1) + 91, "b", "122", {}),
        EventRecord("call.offered", at(2), "c", "122", {}),
        EventRecord("call.queued", at(2), "c", "122", {"queue": "q-122"}),
        EventRecord("call.offered", at(3), "d", "122", {}),
        EventRecord("call.queued", at(3), "d", "122", {"queue": "q-122"}),
    ]
    board = LiveBoard(["122"], tz=TZ)
    for e in events:
        board.feed(e)
    (tile,) = board.snapshot(at(4))["hotlines"]
    store = RecordStore.sqlite(":memory:")
    store.write(events)
    kpi = compute(store.period_records(at(0), at(5))).hotlines["122"]
    store.close()
    assert (kpi.offered, kpi.answered, kpi.abandoned, kpi.in_progress) == (4, 1, 1, 2)
    assert tile["waiting"] == kpi.in_progress == 2
    assert tile["answer_rate_today"] == kpi.answer_rate == 0.5
    assert tile["below_target"] is kpi.below_target is True


def test_a_call_offered_before_midnight_counts_for_its_day_on_the_board_and_in_the_records() -> None:
    midnight = at(16 * 60)  # 00:00 +08:00 after the morning's day
    x = {"transfer_id": "XM", "to_hotline": "119"}
    events = [
        EventRecord("call.offered", midnight - 20, "late", "110", {}),
        EventRecord("queue.joined", midnight - 20, "late", "110", {"queue": "q-110"}),
        EventRecord("call.answered", midnight + 10, "late", "110", {"agent": "p1"}),  # answered after midnight
        EventRecord("call.offered", midnight - 5, "gone", "110", {}),
        EventRecord("call.ended", midnight + 30, "gone", "110", {}),  # lost after midnight
        EventRecord("call.offered", midnight + 40, "new", "110", {}),
        # a transfer from 12345 rang at 119 before midnight and was answered there after it: yesterday's
        EventRecord("call.offered", midnight - 60, "x", "12345", {}),
        EventRecord("call.answered", midnight - 50, "x", "12345", {"agent": "a1"}),
        EventRecord("transfer.ringing", midnight - 1, "x", "12345", {**x, "from_hotline": "12345"}),
        EventRecord("transfer.answered", midnight + 5, "x", "12345", {**x, "from_hotline": "12345"}),
    ]
    board = LiveBoard(["110", "119"], tz=TZ)
    for e in events:
        board.feed(e)
    tile, expert = board.snapshot(midnight + 50)["hotlines"][:2]
    assert (tile["offered_today"], tile["answered_today"], tile["abandoned_today"]) == (1, 0, 0)
    assert (expert["offered_today"], expert["answered_today"]) == (0, 0)
    store = RecordStore.sqlite(":memory:")
    store.write(events)
    today_all = compute(store.period_records(midnight, midnight + 86400)).hotlines
    before_all = compute(store.period_records(midnight - 86400, midnight)).hotlines
    store.close()
    today, before = today_all["110"], before_all["110"]
    assert "119" not in today_all  # not offered again by its answer after midnight
    assert (before_all["119"].offered, before_all["119"].answered) == (1, 1)
    assert (today.offered, today.answered, today.abandoned) == (1, 0, 0)
    assert (before.offered, before.answered, before.abandoned) == (2, 1, 1)
    assert board.answered_total["110"] == board.abandoned_total["110"] == 1  # the lifetime counters count all
