"""The live board on whole event streams: what it shows after every event, the alarms it raises and its
``/metrics`` counters are those recorded in ``tests/fixtures/board/golden.json``.

The golden file was written by the board as it was before ``LiveBoard.feed`` became a table of handlers (an
if/elif chain on type strings then): the table must give the same picture, event by event. Streams: a demo
day recorded by the daemon against the simulator (``demo-day.events.jsonl``, exported from its records), the
hand-worked morning of ``records_scenario``, and the edge cases below (midnight, PBX restart, members removed,
counts of free agents given by the source, alarms of the bus and the records).

After a deliberate change of what the board shows: ``python tests/store/test_store_live_streams.py`` rewrites
the golden file (review its diff).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from records_scenario import END, morning

from callbridge.store.live import LiveBoard
from callbridge.store.record import EventRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "board"
GOLDEN = FIXTURES / "golden.json"
TZ = timezone(timedelta(hours=8))
HOTLINES = ["12345", "110", "119", "120", "122"]
TARGETS = {"12345": 0.85, "110": 0.98, "119": 0.98, "120": 0.98, "122": 0.9}


def demo_day() -> list[EventRecord]:
    lines = (FIXTURES / "demo-day.events.jsonl").read_text(encoding="utf-8").splitlines()
    return [EventRecord(**json.loads(line)) for line in lines]


def edge_cases() -> list[EventRecord]:
    """Every branch of the board that the two recorded days do not reach."""
    t0 = datetime(2033, 5, 19, tzinfo=TZ).timestamp() - 600  # ten minutes before midnight on the board
    out: list[EventRecord] = []

    def ev(type_: str, dt: float, call_id: str | None = None, hotline: str | None = None, **data: Any) -> None:
        out.append(EventRecord(type_, t0 + dt, call_id, hotline, data))

    ev("queue.member_changed", 0, None, "119", queue="q-119", agent="f1", status="Not in use")
    ev("queue.member_changed", 0, None, "119", queue="q-119", member="f2", free=True)
    ev("queue.member_changed", 0, None, "119", queue="q-119", interface="PJSIP/f3", state="idle", paused="1")
    ev("queue.member_changed", 1, None, "119", queue="q-119", agent="f4", status=1, in_call=True)
    ev("queue.member_changed", 1, None, "119", queue="q-119")  # nobody named: ignored
    ev("queue.member_changed", 2, None, None, queue="q-119", agent="f2", change="removed")  # hotline by queue
    ev("queue.member_changed", 2, None, "119", queue="q-119", agent="f1", removed=True)
    for i in range(7):  # 119: one answered, six abandoned before midnight: the rate falls under 98 %
        call = f"f-{i}"
        ev("call.offered", 10 + i, call, "119", caller_num=f"1390000000{i}")
        ev("queue.joined", 10.5 + i, call, "119", queue="q-119")
        if i == 0:
            ev("call.answered", 20 + i, call, "119", agent="f4", queue="q-119")
        else:
            ev("queue.abandoned", 30 + i, call, None, queue="q-119")
            ev("call.ended", 31 + i, call, None, cause="caller_hangup")
    ev("queue.member_changed", 40, None, "119", queue="q-119", agent="f9", status=1, agents_free=3)
    ev("call.offered", 50, "f-late", "119", caller_num="13900000099")
    ev("call.queued", 50.5, "f-late", "119", queue="q-119")
    ev("transfer.requested", 60, "f-0", "119", transfer_id="Y1", from_hotline="119", to_hotline="120",
       caller_num="13900000000", mode="blind")  # fmt: skip
    ev("transfer.ringing", 61, "f-0", "119", transfer_id="Y1")
    ev("transfer.number_mismatch", 62, "f-0", "119", transfer_id="Y1", seen_num="0571")
    ev("transfer.requested", 63, "f-late", None, transfer_id="Y2", from_hotline="119", to_hotline="110")
    ev("transfer.requested", 64, "f-x", "119", transfer_id="Y3", to_hotline="122")
    ev("transfer.ringing", 64.5, None, None)  # no transfer id: ignored
    ev("transfer.failed", 65, "f-x", "119", transfer_id="Y3", reason="no_answer")
    ev("queue.overflow_started", 70, None, "119", queue="q-119", target="remote-119")
    ev("nuisance.flagged", 75, None, "119", caller_num="13900000001", reason="repeat_silent")
    ev("records.backlog", 80, None, None, pending=5000)
    ev("outbox.full", 81, None, None, reason="queue full")
    ev("ami.lost", 82, None, None, reason="connection reset")
    ev("call.ended", 90, "f-0", "119", cause="normal")  # ends its transfer Y1 still shown in progress
    # past midnight: today's counts start again; the call offered before midnight counts for its day
    ev("call.answered", 700, "f-late", "119", agent="f9")
    ev("queue.overflow_ended", 710, None, "119", queue="q-119")
    ev("call.offered", 720, "g-1", "122", caller_num="13600000001")
    ev("queue.joined", 721, "g-1", "122", queue="q-122")
    ev("transfer.requested", 722, "g-1", "122", transfer_id="Y4", from_hotline="122", to_hotline="110")
    ev("pbx.restarted", 730, None, None, reason="FullyBooted")
    ev("queue.joined", 731, "g-2", "122", queue="q-122")
    ev("dialplan.rejected", 740, None, None, reason="file_change", problems=["x.yaml:1:1: bad"])
    return out


STREAMS: dict[str, Callable[[], list[EventRecord]]] = {"demo day": demo_day, "morning": morning,
                                                       "edge cases": edge_cases}  # fmt: skip


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def counters(board: LiveBoard) -> dict[str, Any]:
    """The Prometheus counters, JSON-safe (tuple keys joined)."""
    def flat(c: Any) -> dict[str, Any]:
        return {"|".join(k) if isinstance(k, tuple) else k: v for k, v in sorted(c.items())}

    return {name: flat(getattr(board, name)) for name in (
        "offered_total", "answered_total", "abandoned_total", "transfers_total", "number_checks_total",
        "overflow_seconds_total", "nuisance_total")}  # fmt: skip


def observe(events: list[EventRecord]) -> dict[str, Any]:
    """The board fed one event at a time: a digest of its picture after each, what it raised, where it ends."""
    board = LiveBoard(HOTLINES, targets=TARGETS, tz=TZ)
    steps, raised = [], []
    for i, event in enumerate(events):
        alarms = board.feed(event)
        raised += [{"at": i, **dataclasses.asdict(EventRecord.of(a))} for a in alarms]
        steps.append(digest(board.snapshot(event.ts + 1.0)))
    last = events[-1].ts + 1.0 if events else END
    return {"events": len(events), "steps": steps, "raised": raised, "final": board.snapshot(last),
            "counters": counters(board)}


def recorded() -> dict[str, Any]:
    return {name: observe(stream()) for name, stream in STREAMS.items()}


def test_the_board_shows_what_it_showed_on_every_recorded_stream() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    now = json.loads(orjson.dumps(recorded()))
    assert set(now) == set(golden)
    for name, was in golden.items():
        got = now[name]
        assert got["events"] == was["events"] > 30, name
        first = next((i for i, (a, b) in enumerate(zip(got["steps"], was["steps"], strict=True)) if a != b), None)
        assert first is None, f"{name}: the board differs from event {first} on: {STREAMS[name]()[first]}"
        assert got["raised"] == was["raised"], name
        assert got["final"] == was["final"], name
        assert got["counters"] == was["counters"], name


def test_the_streams_reach_every_kind_of_change() -> None:
    """The golden comparison means something only if the streams exercise the board: alarms, flows, counters."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    alarms = {a["type"] for s in golden.values() for a in s["final"]["alarms"]}
    assert {"kpi.answer_rate_low", "transfer.failed", "nuisance.flagged", "ami.lost", "pbx.restarted",
            "transfer.number_mismatch", "records.backlog", "outbox.full", "dialplan.rejected"} <= alarms  # fmt: skip
    assert sum(len(s["raised"]) for s in golden.values()) >= 3
    assert all(len(set(s["steps"])) > 10 for s in golden.values())
    edge = golden["edge cases"]["counters"]
    assert edge["overflow_seconds_total"]["119"] == 640.0 and edge["number_checks_total"] == {"119|120|mismatch": 1}


if __name__ == "__main__":
    GOLDEN.write_text(orjson.dumps(recorded(), option=orjson.OPT_INDENT_2).decode() + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
