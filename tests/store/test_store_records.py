"""Records and KPIs for a realistic morning match what happened (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from records_scenario import END, EXPECTED, PAIRS, PERIOD, T0, TZ, at, morning

from callbridge.store.kpi import answer_rate_alarms, compute
from callbridge.store.periods import parse_period
from callbridge.store.projection import EventRecord
from callbridge.store.records import CALL_COLUMNS, RecordStore, rows_to_csv
from callbridge.store.report import render_csv, render_markdown
from callbridge.store.schema import MIGRATIONS

ALL_VERSIONS = [version for version, _name, _ddl in MIGRATIONS]


def test_sqlite_file_is_wal_and_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "records.db"
    first = RecordStore.sqlite(path)
    assert first.schema_versions() == ALL_VERSIONS
    assert first.backend.journal_mode() == "wal"  # type: ignore[attr-defined]
    first.close()
    again = RecordStore.sqlite(path)  # reopening must not re-run (it would fail on existing tables)
    assert again.schema_versions() == ALL_VERSIONS
    again.close()
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"calls", "legs", "events", "transfers", "conferences", "queue_waits", "overflows",
            "backup_line_uses", "nuisance_flags", "commands", "called_legs", "schema_migrations"} <= names  # fmt: skip


def test_kpis_of_the_morning_match_the_story(store: RecordStore) -> None:
    events = morning()
    assert store.write(events) == len(events)
    period = parse_period(PERIOD, now=END, tz=TZ)
    report = compute(store.period_records(period.start, period.end), targets={"120": 0.9})
    assert set(report.hotlines) == {"12345", "110", "120", "119", "122"}
    for hotline, expected in EXPECTED.items():
        kpi = report.hotlines[hotline]
        for field, value in expected.items():
            got = getattr(kpi, field)
            assert got == (pytest.approx(value) if isinstance(value, float) else value), (hotline, field, got)
    assert report.hotlines["120"].target == 0.9
    assert report.transfers_by_pair == PAIRS
    alarms = answer_rate_alarms(report, now=END)
    # 12345 is on its target (8 of 10 finished offers; 2 still waiting), 110 under it (4 of 6, the transfer
    # in included); 119 too, but with one finished offer only (under min_offered)
    assert {(a.hotline, round(a.rate, 3)) for a in alarms} == {("110", 0.667)}
    assert all(a.TYPE == "kpi.answer_rate_low" and a.target == 0.8 for a in alarms)


def test_period_boundaries_exclude_other_calls(store: RecordStore) -> None:
    store.write(morning())
    # 08:00–08:20 holds 12345's c1..c4 (offered at 4, 8, 12, 16 min), 110's p1..p3 (5, 10, 15) and X1, c1
    # transferred in (rang at 110 at 4 min 36 s); X3 rang at 119 at 12 min 26 s and failed at 12 min 56 s.
    records = store.period_records(T0, at(20))
    report = compute(records)
    assert report.hotlines["12345"].offered == 4
    assert report.hotlines["110"].offered == 4
    assert (report.hotlines["119"].offered, report.hotlines["119"].abandoned) == (1, 1)
    # an offer's outcome after the period still counts for it: c4 was answered at 16 min 20 s, X3 failed
    # inside; 08:00–08:12:30 holds c1..c3 and X3's offer, whose failure comes after the period's end
    early = compute(store.period_records(T0, at(12.5))).hotlines
    assert (early["12345"].offered, early["12345"].answered) == (3, 3)
    assert (early["119"].offered, early["119"].abandoned, early["119"].in_progress) == (1, 1, 0)
    assert report.hotlines["110"].overflow_minutes == pytest.approx(10.0)  # 08:10–08:20 of 08:10–08:25


def test_search_by_number_hotline_and_time(store: RecordStore) -> None:
    store.write(morning())
    by_number = store.search_calls(number="13800000002")
    # the 12345 call and its receiving side at 120 (which carries the same caller number)
    assert [(r["call_id"], r["hotline"]) for r in by_number] == [("c2", "12345"), ("c2-120", "120")]
    assert by_number[0]["transfers"] == 1 and by_number[0]["outcome"] == "answered"
    assert datetime.fromisoformat(by_number[0]["offered_at"]).timestamp() == at(8)
    to_110 = store.search_calls(hotline="110")
    # calls offered to 110, plus the 12345 call transferred to 110
    assert {r["call_id"] for r in to_110} == {"p1", "p2", "p3", "p4", "p5", "c1"}
    window = store.search_calls(start=at(40), end=at(50), hotline="12345")
    assert [r["call_id"] for r in window] == ["c9", "c10"]
    assert {r["outcome"] for r in window} == {"abandoned"}
    assert store.search_calls(call_id="c11")[0]["outcome"] is None  # still waiting
    table = list(csv.DictReader(io.StringIO(rows_to_csv(window, CALL_COLUMNS))))
    assert [r["call_id"] for r in table] == ["c9", "c10"] and table[0]["wait_s"] == "50.0"


def test_timeline_follows_both_sides_of_a_transfer(store: RecordStore) -> None:
    store.write(morning())
    for asked in ("c2", "c2-120"):  # from either side, the whole story
        tl = store.call_timeline(asked)
        assert tl is not None
        assert set(tl["linked_call_ids"]) == {"c2", "c2-120"}
        types = [e["type"] for e in tl["events"]]
        assert types.index("transfer.requested") < types.index("transfer.backup_line") < types.index(
            "transfer.completed"
        )
        assert {e["call_id"] for e in tl["events"]} == {"c2", "c2-120"}
        assert [e["ts"] for e in tl["events"]] == sorted(e["ts"] for e in tl["events"])
        (x2,) = tl["transfers"]
        assert x2["transfer_id"] == "X2" and x2["outcome"] == "completed"
        assert x2["backup_line"] is True and x2["line"] == "trunk-120-b"
        assert x2["number_verified"] is False and x2["seen_num"] == "057100000000"
        assert (x2["category"], x2["ticket"], x2["summary"], x2["dest_agent"]) == (
            "injury", "T-2", "fall, conscious", "m8")  # fmt: skip
        assert [u["line"] for u in tl["backup_line_uses"]] == ["trunk-120-b"]


def test_threeway_handover_closes_both_sides(store: RecordStore) -> None:
    store.write(morning())
    tl = store.call_timeline("c1")
    assert tl is not None
    (x1,) = tl["transfers"]
    assert x1["number_verified"] is True and x1["mode"] == "threeway"
    assert x1["both_sides_closed"] is True
    assert x1["from_closed_at"] < x1["to_closed_at"]
    (conf,) = tl["conferences"]
    assert conf["room"] == "cb-conf-X1" and conf["agent_left_at"] is not None
    assert {leg["channel"] for leg in tl["legs"]} == {"PJSIP/trunk-c1", "PJSIP/a1-1"}
    assert [q["outcome"] for q in tl["queue_waits"]] == ["left"]
    x3 = store.call_timeline("c3")
    assert x3 is not None and x3["transfers"][0]["outcome"] == "returned"
    assert x3["transfers"][0]["both_sides_closed"] is False
    assert store.call_timeline("nope") is None


def test_commands_nuisance_and_overflow_rows(store: RecordStore) -> None:
    store.write(morning())
    db = store.backend
    (cmd,) = db.query("SELECT command, source, agent, call_id FROM commands")
    assert cmd == {"command": "transfer", "source": "mqtt", "agent": "a1", "call_id": "c1"}
    flags = db.query("SELECT caller_num FROM nuisance_flags ORDER BY ts")
    assert [f["caller_num"] for f in flags] == ["13900000009", "13900000009", "13900000008"]
    spans = db.query("SELECT hotline, started_ts, ended_ts FROM overflows ORDER BY started_ts")
    assert [(s["hotline"], s["ended_ts"] is None) for s in spans] == [("110", False), ("12345", True)]


def test_incomplete_and_unknown_events_are_kept_not_fatal(store: RecordStore) -> None:
    odd = [
        EventRecord("call.answered", T0, None, None, {}),
        EventRecord("transfer.completed", T0 + 1, "zz", None, {}),  # no transfer id
        EventRecord("call.ended", T0 + 2, "ghost", None, {"cause": 16}),  # never offered
        EventRecord("something.new", T0 + 3, "zz", "999", {"nested": {"a": [1, 2]}}),
        EventRecord("queue.overflow_ended", T0 + 4, None, None, {}),
    ]
    assert store.write(odd) == 5
    tl = store.call_timeline("zz")
    assert tl is not None and tl["events"][-1]["data"] == {"nested": {"a": [1, 2]}}
    assert store.search_calls() == []


def test_report_renders_markdown_and_csv(store: RecordStore) -> None:
    store.write(morning())
    period = parse_period(PERIOD, now=END, tz=TZ)
    report = compute(store.period_records(period.start, period.end))
    md = render_markdown(report, period)
    assert "人工接通率 Answer rate" in md
    assert "| 110 | 6 | 4 | 66.7% ⚠ | 80% | 2 |" in md
    assert "| 12345 | 119 | returned | 1 |" in md
    rows = {r["hotline"]: r for r in csv.DictReader(io.StringIO(render_csv(report, period)))}
    assert rows["12345"]["offered"] == "12" and rows["12345"]["answer_rate"] == "0.8"
    assert rows["12345"]["in_progress"] == "2" and rows["12345"]["below_target"] == "0"
    assert "| 12345 | 12 | 8 | 80.0% | 80% | 2 | 2 |" in md  # on target: no ⚠; 2 in progress
    assert "offers still in progress are not counted" in md
    assert rows["110"]["overflow_minutes"] == "15" and rows["110"]["nuisance_callers"] == "2"
    assert rows["120"]["below_target"] == "0"


def test_a_reused_room_is_two_conferences(store: RecordStore) -> None:
    def conf(type_: str, ts: float, call_id: str | None, **data: object) -> EventRecord:
        return EventRecord(type_, ts, call_id, None, {"room": "3way", **data})

    store.write([
        conf("conference.started", T0, None), conf("conference.joined", T0 + 1, "k1", channel="PJSIP/a-1"),
        conf("conference.left", T0 + 5, "k1", channel="PJSIP/a-1"), conf("conference.ended", T0 + 6, None),
        conf("conference.started", T0 + 60, None), conf("conference.joined", T0 + 61, "k2", channel="PJSIP/b-1"),
    ])  # fmt: skip
    rows = store.backend.query("SELECT room, call_id, joins, leaves, ended_ts FROM conferences ORDER BY started_ts")
    assert [(r["call_id"], r["joins"], r["leaves"], r["ended_ts"] is None) for r in rows] == [
        ("k1", 1, 1, False), ("k2", 1, 0, True)]  # fmt: skip


@pytest.mark.postgres
def test_daemons_starting_together_migrate_once(pg_dsn: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: RecordStore.postgres(pg_dsn), range(4)))
    assert all(s.schema_versions() == ALL_VERSIONS for s in stores)
    for s in stores:
        s.close()


def test_prune_keeps_only_recent_records(store: RecordStore) -> None:
    store.write(morning())
    left = store.prune(at(30))
    assert left["calls"] == len(store.search_calls()) and {r["call_id"] for r in store.search_calls()} == {
        "c8", "c9", "c10", "c11", "c12", "m2"}  # fmt: skip
    assert left["transfers"] == 0 and left["nuisance_flags"] == 2
    assert min(r["ts"] for r in store.backend.query("SELECT ts FROM events")) >= at(30)
