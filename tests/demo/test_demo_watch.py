"""The demo's subscriber log and summary: de-duplication per topic, waiting, and the counts shown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console

from callbridge.demo.lab import DEMO_EDITS, copy_dialplans, default_dialplans, parse_broker, transfers_in_progress
from callbridge.demo.records import records_summary, records_tables
from callbridge.demo.runner import rate_notes, summary_of
from callbridge.demo.stage import Check, StepOutcome, who
from callbridge.demo.view import summarise
from callbridge.demo.watch import EventLog
from callbridge.dialplan import load_dialplan
from callbridge.store.kpi import CallRow, PeriodRecords, TransferRow, answer_rate, compute


def envelope(event_id: str, type_: str, subject: str | None = None, **data: Any) -> dict[str, Any]:
    env: dict[str, Any] = {"specversion": "1.0", "id": event_id, "type": f"org.callbridge.{type_}", "data": data}
    if subject:
        env["subject"] = subject
    return env


def test_one_event_on_several_topics_is_not_a_duplicate_but_a_redelivery_is() -> None:
    log = EventLog()
    pop = envelope("e1", "transfer.requested", "c1", caller_num="13900000000", to_hotline="110")
    assert log.add("callbridge/demo/events/12345/transfer/requested", pop) is not None
    assert log.add("callbridge/demo/events/110/transfer/requested", pop) is not None
    assert log.add("callbridge/demo/calls/c1", pop) is not None
    assert log.add("callbridge/demo/events/110/transfer/requested", pop) is None  # QoS 1 redelivery
    assert log.duplicates == 1 and len(log.events) == 3 and len(log.firsts) == 1
    assert log.count("transfer.requested") == 1
    on_110 = log.find("transfer.requested", lambda e: e.on_hotline("110"))
    assert on_110 is not None and on_110.topic.endswith("/110/transfer/requested")
    assert log.find("transfer.requested", lambda e: e.on_hotline("119")) is None


async def test_wait_for_sees_later_events_only_after_the_mark_and_times_out() -> None:
    log = EventLog()
    log.add("t/events/_/dialplan/rejected", envelope("old", "dialplan.rejected"))
    mark = log.mark

    async def later() -> None:
        await asyncio.sleep(0.05)
        log.add("t/events/_/dialplan/rejected", envelope("new", "dialplan.rejected"))

    task = asyncio.create_task(later())
    found = await log.wait_for("dialplan.rejected", since=mark, timeout=5)
    await task
    assert found is not None and found.id == "new"
    assert await log.wait_for("dialplan.reloaded", timeout=0.05) is None


def test_summary_counts_from_the_subscribers_events() -> None:
    log = EventLog()
    for n, answered in ((1, True), (2, True), (3, False), (4, True), (5, False), (6, False)):
        log.add("t/events/12345/call/offered", envelope(f"o{n}", "call.offered", f"c{n}", hotline="12345"))
        if answered:
            log.add("t/events/12345/call/answered", envelope(f"a{n}", "call.answered", f"c{n}", hotline="12345"))
    h = {"hotline": "12345"}
    log.add("t/events/12345/call/ended", envelope("e1", "call.ended", "c1", **h))  # answered, then ended: answered
    log.add("t/events/12345/call/ended", envelope("e3", "call.ended", "c3", **h))  # ended unanswered
    log.add("t/events/12345/queue/abandoned", envelope("q5", "queue.abandoned", "c5", **h))  # gave up waiting
    log.add("t/events/12345/call/ended", envelope("e5", "call.ended", "c5", **h))  # … and then hung up: once
    # c6 is still waiting: in progress, not in the answer rate (3 of 5 finished, not 3 of 6)
    log.add("t/events/110/transfer/requested", envelope("x1", "transfer.requested", "c1"))
    log.add("t/events/110/transfer/number_verified", envelope("v1", "transfer.number_verified", "c1"))
    log.add("t/events/110/transfer/number_verified", envelope("v1", "transfer.number_verified", "c1"))
    good = StepOutcome("a", [Check("x", True)])
    bad = StepOutcome("b", [Check("x", True), Check("y", False, "never seen")])
    summary = summary_of(log, [good, bad], 1.234)
    assert summary["ok"] is False
    assert [s["ok"] for s in summary["steps"]] == [True, False] and summary["steps"][1]["detail"] == "y: never seen"
    assert (summary["calls_offered"], summary["calls_answered"], summary["calls_abandoned"],
            summary["calls_in_progress"], summary["answer_rate"]) == (6, 3, 2, 1, 0.6)  # fmt: skip
    assert summary["answer_rate"] == answer_rate(3, 2)  # the records' definition, not answered / offered
    waiting = EventLog()
    waiting.add("t/events/12345/call/offered", envelope("o1", "call.offered", "c1", hotline="12345"))
    assert summary_of(waiting, [good], 0.0)["answer_rate"] is None  # no offer finished yet: no rate ("–")
    assert summary["transfers"] == 1 and summary["number_carrying_verified"] == 1 and summary["duplicates"] == 1
    assert summary_of(log, [good], 0.0)["ok"] is True
    assert summary_of(log, [], 0.0)["ok"] is False  # nothing played is not a success
    assert StepOutcome("empty").ok is False


def test_every_demo_edit_applies_and_the_copy_is_a_valid_dialplan(tmp_path: Path) -> None:
    source = default_dialplans()
    originals = "".join(f.read_text(encoding="utf-8") for f in sorted(source.glob("*.yaml")))
    for old, _new, why in DEMO_EDITS:
        assert old in originals, f"demo edit no longer applies ({why}): {old!r}"
    plan = load_dialplan(copy_dialplans(source, tmp_path / "copy"))
    assert "PJSIP/agent2291" in plan.queues["q-119-expert"].members
    assert parse_broker("mqtt://127.0.0.1:1884").port == 1884


def test_records_summary_reports_the_kpis_of_the_store_rows() -> None:
    calls = (CallRow("c1", "12345", 10.0, answered_ts=12.0, wait_s=2.0, outcome="answered"),
             CallRow("c2", "12345", 20.0, ended_ts=40.0, wait_s=20.0, outcome="abandoned"),
             CallRow("c3", "110", 30.0, answered_ts=31.0, wait_s=1.0, outcome="answered"),
             CallRow("c4", "110", 50.0))  # still ringing: in progress  # fmt: skip
    transfers = (
        TransferRow("x1", "12345", "110", "completed", 11.0, number_verified=True),
        TransferRow("x2", "12345", "110", "failed", 15.0, number_verified=False, backup_line=True),
        TransferRow("x3", "12345", "120", "answered", 51.0),  # its call is still up
    )
    report = compute(PeriodRecords(0.0, 100.0, calls, transfers), {"12345": 0.85})
    summary = records_summary(report)
    # the "all" row uses the per-hotline definition over finished offers: 2 of 3, not 2 of 4 offered
    assert (summary["offered"], summary["answered"], summary["abandoned"], summary["in_progress"]) == (4, 2, 1, 1)
    assert summary["answer_rate"] == 0.667
    assert summary["hotlines"]["110"]["answer_rate"] == 1.0 and summary["hotlines"]["110"]["in_progress"] == 1
    assert transfers_in_progress(report) == 1
    citizen = summary["hotlines"]["12345"]
    assert (citizen["offered"], citizen["answered"], citizen["abandoned"], citizen["answer_rate"]) == (2, 1, 1, 0.5)
    assert citizen["target"] == 0.85 and citizen["number_verified"] == 0.5 and citizen["backup_line_uses"] == 1
    assert summary["hotlines"]["110"]["transfers_in"] == 2
    assert summary["transfers_by_pair"] == [{"from": "12345", "to": "110", "outcomes": {"completed": 1, "failed": 1}},
                                            {"from": "12345", "to": "120", "outcomes": {"answered": 1}}]
    console = Console(width=80, record=True)
    for table in records_tables(summary):
        console.print(table)
    shown = console.export_text()
    assert "12345 → 110" in shown and "completed 1, failed 1" in shown and "67%" in shown and "50%" in shown
    # a transfer whose call is still up is not shown as if it were final
    assert "answered 1 (in progress 进行中)" in shown and "completed 1 (" not in shown
    all_row = next(line for line in shown.splitlines() if "all 合计" in line)
    assert [cell.strip() for cell in all_row.split("│")[2:7]] == ["4", "2", "1", "1", "67%"]
    assert "…" not in shown  # every heading and number fits an 80-column terminal


def test_parties_are_named_as_an_operator_names_them() -> None:
    assert who("PJSIP/agent1001-0000000a") == "agent 1001"
    assert who("PJSIP/hotline-110-backup-0000000d") == "the 110 backup line"
    assert who("PJSIP/hotline-120-00000005") == "the 120 primary line"
    assert who("PJSIP/carrier-00000019") == "a citizen"
    assert who("Local/3001@cb-remote-00000001;1") == "remote seat 3001"


def test_event_summaries_leave_dial_strings_and_paths_to_verbose() -> None:
    log = EventLog()
    ev = log.add("callbridge/demo/events/12345/transfer/backup_line", envelope(
        "e1", "transfer.backup_line", "c1", caller_num="13900000000", line="PJSIP/110@hotline-110-backup",
        failed_line="PJSIP/110@hotline-110", room="cb-1234", reason="/tmp/x/dialplans/a.yaml:5:17: error: bad"))
    assert ev is not None
    plain, verbose = summarise(ev, verbose=False), summarise(ev, verbose=True)
    assert "PJSIP" not in plain and "cb-1234" not in plain and "/tmp" not in plain
    assert "caller_num=13900000000" in plain and "reason=a.yaml:5:17: error: bad" in plain
    assert "failed_line=PJSIP/110@hotline-110" in verbose and "room=cb-1234" in verbose


def test_every_hotline_below_its_target_gets_a_word_on_why() -> None:
    def kpi(answered: int, abandoned: int, target: float) -> dict[str, Any]:
        finished = answered + abandoned
        rate = answer_rate(answered, abandoned) if finished else None
        return {"answered": answered, "abandoned": abandoned, "answer_rate": rate, "target": target}

    records = {"hotlines": {"110": kpi(3, 0, 0.98), "119": kpi(0, 2, 0.98), "122": kpi(0, 0, 0.98),
                            "12345": kpi(7, 3, 0.85)}}  # fmt: skip
    notes = rate_notes(records, {"119": ["scene 3: the waiting callers hung up"]})
    assert notes == ["119 at 0% (0 of 2 answered): scene 3: the waiting callers hung up",
                     "12345 at 70% (7 of 10 answered): 3 caller(s) hung up before an answer"]  # fmt: skip
