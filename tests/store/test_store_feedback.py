"""The case loop in the records (SQLite and PostgreSQL): ``handover.feedback`` rows, migration 3 on a database
written before it, and the open loops older than N hours per hotline pair that ``report`` lists."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from callbridge.calls.events import CallAnswered, CallOffered
from callbridge.cli import main
from callbridge.domain import DomainEvent
from callbridge.engine.events import TransferAnswered, TransferCompleted, TransferFailed, TransferRequested
from callbridge.store import schema
from callbridge.store.feedback import HandoverFeedback, feedback_of, handover_of, open_loops, render_open_loops
from callbridge.store.records import RecordStore

H = 3600.0
T0 = 1_790_000_000.0


def handover(xfer: str, to: str, at: float, *, reached: bool = True, frm: str = "12345") -> list[DomainEvent]:
    x = {"transfer_id": xfer, "from_hotline": frm, "to_hotline": to, "caller_num": "13912340001",
         "agent": "agent1001", "ticket": f"T-{xfer}", "category": "police", "mode": "blind"}  # fmt: skip
    call = f"c-{xfer}"
    out: list[DomainEvent] = [
        CallOffered(ts=at - 30, call_id=call, hotline=frm, caller_num="13912340001"),
        CallAnswered(ts=at - 20, call_id=call, hotline=frm, agent="agent1001"),
        TransferRequested(ts=at, call_id=call, hotline=frm, source="command", **x),
    ]
    if reached:
        out += [TransferAnswered(ts=at + 5, call_id=call, hotline=frm, answered_by="agent2101", **x),
                TransferCompleted(ts=at + 6, call_id=call, hotline=frm, reason="answered", **x)]  # fmt: skip
    else:
        out.append(TransferFailed(ts=at + 30, call_id=call, hotline=frm, reason="noanswer", **x))
    return out


def feedback(xfer: str, to: str, outcome: str, at: float, reason: str = "", frm: str = "12345") -> HandoverFeedback:
    return HandoverFeedback(ts=at, call_id=f"c-{xfer}", hotline=to, transfer_id=xfer, from_hotline=frm,
                            to_hotline=to, outcome=outcome, reason=reason, agent="agent2101")  # fmt: skip


def test_feedback_is_recorded_and_open_loops_are_listed_per_pair(store: RecordStore) -> None:
    now = T0 + 10 * H
    store.write([
        *handover("A", "110", T0),
        feedback("A", "110", "accepted", T0 + 60), feedback("A", "110", "dispatched", T0 + 90),
        *handover("B", "110", T0 + H), feedback("B", "110", "resolved", T0 + 2 * H),
        *handover("C", "119", T0 + H), feedback("C", "119", "returned", T0 + 2 * H, "not a fire"),
        *handover("D", "110", T0, reached=False),  # never reached 110: no loop
        *handover("E", "110", now - H),  # reached, but only an hour ago
        *handover("F", "120", T0 + 2 * H),  # reached 120, no word at all
        *handover("G", "12345", T0, frm="110"),  # the other direction
    ])  # fmt: skip
    assert [r["outcome"] for r in feedback_of(store.backend, "A")] == ["accepted", "dispatched"]
    assert feedback_of(store.backend, "C")[0]["reason"] == "not a fire"

    loops = open_loops(store.backend, now=now, older_than_s=4 * H)
    assert [(lp.from_hotline, lp.to_hotline, lp.transfer_id, lp.last_outcome) for lp in loops] == [
        ("110", "12345", "G", ""), ("12345", "110", "A", "dispatched"), ("12345", "120", "F", ""),
    ]  # fmt: skip
    assert loops[1].ticket == "T-A"
    # a loop closes when the receiving side resolves it; the hour-old one shows up once it is old enough
    store.write([feedback("A", "110", "resolved", now - 60)])
    later = open_loops(store.backend, now=now + 4 * H, older_than_s=4 * H)
    assert [lp.transfer_id for lp in later] == ["G", "E", "F"]

    text = render_open_loops(loops, now=now, hours=4)
    assert "| 12345 → 110 | 1 | 10.0 | A (dispatched) |" in text
    assert "| 12345 → 120 | 1 | 8.0 | F (none) |" in text
    csv_text = render_open_loops(loops, now=now, hours=4, fmt="csv")
    assert csv_text.splitlines()[2] == "12345,110,A,T-A,10.0,dispatched"
    assert render_open_loops([], now=now, hours=4).endswith("No open loop.\n")

    found = handover_of(store.backend, "A")
    assert found is not None and (found.from_hotline, found.to_hotline, found.ticket) == ("12345", "110", "T-A")
    assert handover_of(store.backend, "nope") is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def reopen(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], RecordStore]:
    """Opens a records database written by a daemon that knew migrations 1 and 2, with a completed hand-over."""
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None

    def open_store() -> RecordStore:
        return RecordStore.postgres(dsn) if dsn is not None else RecordStore.sqlite(tmp_path / "old.db")

    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
        old = open_store()
        assert old.schema_versions() == [1, 2]
        old.write(handover("OLD", "110", T0))
        old.close()
    return open_store


def test_migration_3_applies_to_an_existing_database(reopen: Callable[[], RecordStore]) -> None:
    store = reopen()
    try:
        assert store.schema_versions() == [1, 2, 3]
        # the hand-over recorded before the migration is an open loop, and feedback on it is kept
        assert [lp.transfer_id for lp in open_loops(store.backend, now=T0 + 5 * H, older_than_s=H)] == ["OLD"]
        store.write([feedback("OLD", "110", "resolved", T0 + 2 * H)])
        assert open_loops(store.backend, now=T0 + 5 * H, older_than_s=H) == []
        timeline = store.call_timeline("c-OLD")
        assert timeline is not None and timeline["events"][-1]["type"] == "handover.feedback"
    finally:
        store.close()


def test_report_lists_open_loops_older_than_n_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()  # the report's clock; only hours relative to it matter
    db = tmp_path / "records.db"
    store = RecordStore.sqlite(db)
    store.write([*handover("OLD", "110", now - 10 * H), feedback("OLD", "110", "accepted", now - 9 * H),
                 *handover("NEW", "110", now - H), *handover("DONE", "120", now - 10 * H),
                 feedback("DONE", "120", "resolved", now - 9 * H)])  # fmt: skip
    store.close()
    assert main(["report", "--db", str(db), "--open-loops", "4"]) == 0
    out = capsys.readouterr().out
    assert "# Open case loops older than 4 h" in out and "| 12345 → 110 | 1 | 10.0 | OLD (accepted) |" in out
    assert "NEW" not in out and "DONE" not in out
    out_file = tmp_path / "loops.csv"
    assert main(["report", "--db", str(db), "--open-loops", "0.5", "--format", "csv", "-o", str(out_file)]) == 0
    rows = out_file.read_text(encoding="utf-8").splitlines()
    assert [r.split(",")[2] for r in rows[1:]] == ["OLD", "NEW"]
    assert main(["report", "--db", str(db), "--open-loops", "-1"]) == 1
