"""Two centres (issue 21): what the receiving centre's records give back — the hand-overs a restarted daemon
takes up (announced, neither bound nor failed, recent) and the pair's rows of ``report --centres``."""

from __future__ import annotations

from pathlib import Path

from callbridge.centres.binder import HandoverBinder
from callbridge.centres.events import HandoverAnnounced, HandoverBound, HandoverFailed
from callbridge.centres.report import announced_pending, centre_handovers, render_centres
from callbridge.store.records import RecordStore

FIELDS = {"from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000", "agent": "agent1001",
          "category": "police", "ticket": "GD-0001", "centre": "c12345"}  # fmt: skip


def _announced(xfer: str, ts: float) -> HandoverAnnounced:
    return HandoverAnnounced(ts=ts, hotline="110", transfer_id=xfer, remote_call_id="r.1", **FIELDS)


def test_a_restart_takes_up_only_the_recent_hand_overs_still_pending(tmp_path: Path) -> None:
    store = RecordStore.sqlite(tmp_path / "r.sqlite3")
    store.write([_announced("old", 100.0), _announced("bound", 5000.0), _announced("failed", 5001.0),
                 _announced("pending", 5002.0),
                 HandoverBound(ts=5003.0, call_id="c.1", hotline="110", transfer_id="bound", match="header", **FIELDS),
                 HandoverFailed(ts=5004.0, hotline="110", transfer_id="failed", outcome="returned", **FIELDS),
                 ])  # fmt: skip
    [pending] = announced_pending(store.backend, since=4000.0)
    assert (pending.transfer_id, pending.remote_call_id, pending.ticket, pending.sender, pending.ts) == (
        "pending", "r.1", "GD-0001", "agent1001", 5002.0)  # fmt: skip
    out: list[object] = []
    binder = HandoverBinder(out.extend, hotlines=lambda: frozenset({"110"}), header_of=lambda ch: "", centre="c12345")
    binder.recall([pending])
    assert list(binder.pending) == ["pending"] and out == []  # nothing published again
    rows = centre_handovers(store.backend, start=0.0, end=10_000.0)
    assert [(h.transfer_id, h.received, h.match, h.transfer, h.sent_here) for h in rows] == [
        ("bound", "bound", "header", "reached", False), ("failed", "failed", "", "returned", False)]  # fmt: skip
    text = render_centres(rows, label="test")
    assert "| 12345 → 110 | bound | GD-0001 | agent1001 | police | bound (header) | reached | none |" in text
    store.close()
