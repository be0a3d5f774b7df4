"""What the records give back at start-up (callbridge/store/recall.py): the open calls with the last moment each
was known alive, their unfinished transfers rebuilt for the engine, and the board of the day."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from callbridge.calls.tracker import CallTracker
from callbridge.dialplan import load_dialplan
from callbridge.engine.core import Engine
from callbridge.engine.transfer import TState
from callbridge.store.live import LiveBoard
from callbridge.store.recall import open_calls, open_transfers, recall
from callbridge.store.record import EventRecord
from callbridge.store.records import RecordStore

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 29, 12, 0).timestamp()  # a fixed local noon: far from midnight, not today
XFER = {"transfer_id": "t1", "from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000",
        "agent": "agent1001", "mode": "blind", "category": "police"}  # fmt: skip


def day() -> list[EventRecord]:
    e = EventRecord
    return [
        e("call.offered", T0 - 600, "z", "12345", {"caller_num": "13700000009", "channel": "PJSIP/carrier-0"}),
        e("call.answered", T0 - 590, "z", "12345", {"agent": "agent1002"}),  # its end was never seen
        e("queue.member_changed", T0 - 310, None, "12345", {"agent": "agent1003", "status": "1"}),
        e("ami.connected", T0 - 300, None, None, {"host": "pbx:5038"}),  # a later session no longer saw z
        e("call.offered", T0, "x", "12345", {"caller_num": "13800138000", "channel": "PJSIP/carrier-1"}),
        e("call.answered", T0 + 10, "x", "12345", {"agent": "agent1001", "agent_channel": "PJSIP/agent1001-1"}),
        e("transfer.requested", T0 + 20, "x", "12345", {**XFER, "source": "dtmf"}),
        e("transfer.ringing", T0 + 21, "x", "12345", {**XFER, "line": "PJSIP/110@hotline-110"}),
        e("call.ringing", T0 + 21, "x", "12345", {"agent": "hotline-110", "agent_channel": "PJSIP/hotline-110-2"}),
        e("call.offered", T0 + 30, "y", "110", {"caller_num": "13700000002", "channel": "PJSIP/carrier-3"}),
        e("call.ended", T0 + 40, "y", "110", {"reason": "hangup", "answered": False}),
    ]


def test_open_calls_and_the_last_moment_each_was_known_alive(tmp_path: Path) -> None:
    store = RecordStore.sqlite(tmp_path / "r.sqlite3")
    store.write(day())
    known = open_calls(store)
    assert sorted(known) == ["x", "z"]  # y's record is closed
    x, z = known["x"], known["z"]
    assert (x.hotline, x.caller_num, x.offered_ts, x.answered_ts, x.agent) == ("12345", "13800138000", T0, T0 + 10,
                                                                              "agent1001")  # fmt: skip
    assert x.last_seen == T0 + 40  # callbridge watched until its last event
    assert z.last_seen == T0 - 310  # the last event before the session that no longer saw it


def test_an_unfinished_transfer_is_rebuilt_with_its_channels(tmp_path: Path) -> None:
    store = RecordStore.sqlite(tmp_path / "r.sqlite3")
    store.write(day())
    plan = load_dialplan(REPO / "dialplans")
    (t,) = open_transfers(store, ["x", "z"], plan)
    assert (t.id, t.call_id, t.state, t.mode, t.from_hotline, t.to_hotline) == ("t1", "x", TState.RINGING, "blind",
                                                                               "12345", "110")  # fmt: skip
    assert (t.caller_channel, t.dest_channel, t.line) == ("PJSIP/carrier-1", "PJSIP/hotline-110-2",
                                                          "PJSIP/110@hotline-110")  # fmt: skip
    assert t.lines == plan.lines_for("110") and t.context == "cb-to-110" and t.rule.to_hotline == "110"
    store.write([EventRecord("transfer.answered", T0 + 50, "x", "12345", {**XFER, "answered_by": "PJSIP/h-9"})])
    (answered,) = open_transfers(store, ["x"], plan)
    assert (answered.state, answered.dest_channel) == (TState.ANSWERED, "PJSIP/h-9")
    store.write([EventRecord("transfer.completed", T0 + 60, "x", "12345", {**XFER, "reason": "closed"})])
    assert open_transfers(store, ["x"], plan) == []  # finished: nothing to follow


def test_recall_hands_over_calls_transfers_and_the_board_of_the_day(tmp_path: Path) -> None:
    store = RecordStore.sqlite(tmp_path / "r.sqlite3")
    store.write(day())
    plan = load_dialplan(REPO / "dialplans")
    live = LiveBoard(list(plan.hotlines))
    for rec in day():
        live.feed(rec)
    tracker = CallTracker()
    engine = Engine(plan, tracker)
    board = LiveBoard(list(plan.hotlines))
    recalled = recall(store, tracker=tracker, engine=engine, plan=plan, board=board, now=T0 + 100)
    assert sorted(tracker.known) == ["x", "z"] and list(engine.transfers) == ["t1"]
    assert recalled.board_events == len(day())
    before, after = live.snapshot(T0 + 100), board.snapshot(T0 + 100)
    assert before["hotlines"][0]["offered_today"] == 2  # z and x on 12345 (the test shows a real day)
    assert {k: v for k, v in after.items() if k != "version"} == {k: v for k, v in before.items() if k != "version"}
