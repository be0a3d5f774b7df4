"""``callbridge report --centres``: the hand-overs between the two centres, with both outcomes (issue 21.3).

Either centre's records hold the pair's loop: the receiving centre's ``handover.bound`` / ``handover.failed``
(its own events at the receiver, the peer's events taken in over the link at the sender), the case
feedback (``handover_feedback``: the receiver's own, or taken in at the sender) and, at the sending
centre, the transfer itself (``transfers``). One row per hand-over: how the receiving centre bound it
(``header`` / ``caller_number``) or that it failed, the sending side's transfer outcome, and the latest
feedback — the same rows on both sides, so the two centres' reports can be laid side by side.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from callbridge.centres.binder import RemoteHandover
from callbridge.store.backend import Backend

LOOP_TYPES = ("handover.bound", "handover.failed")


@dataclass(frozen=True, slots=True)
class CentreHandover:
    transfer_id: str
    ts: float
    from_hotline: str
    to_hotline: str
    caller_num: str
    agent: str  # the sending agent
    category: str
    ticket: str
    received: str  # bound | failed (at the receiving centre)
    match: str  # header | caller_number | ""
    transfer: str  # the sending side's transfer outcome (answered, completed, failed, returned …)
    feedback: str  # the receiving side's latest feedback ("" when none came)
    sent_here: bool = False  # this centre's records hold the transfer itself (the sending side)


def centre_handovers(db: Backend, *, start: float, end: float) -> list[CentreHandover]:
    """The hand-overs between the centres whose binding or failure falls in ``[start, end)``, oldest first."""
    rows = db.query(
        "SELECT e.ts, e.type, e.transfer_id, e.data, t.outcome AS transfer_outcome,"
        " (SELECT f.outcome FROM handover_feedback f WHERE f.transfer_id = e.transfer_id"
        "  ORDER BY f.ts DESC, f.id DESC LIMIT 1) AS feedback"
        " FROM events e LEFT JOIN transfers t ON t.transfer_id = e.transfer_id"
        " WHERE e.type IN (?, ?) AND e.ts >= ? AND e.ts < ? ORDER BY e.ts, e.seq",
        (*LOOP_TYPES, start, end),
    )
    out: dict[str, CentreHandover] = {}
    for r in rows:
        xfer = str(r["transfer_id"] or "")
        if not xfer or (xfer in out and out[xfer].received == "failed"):
            continue  # one row per hand-over; a failure is final
        d = orjson.loads(str(r["data"]))
        failed = r["type"] == "handover.failed"
        sender_outcome = r["transfer_outcome"] or (str(d.get("outcome") or "failed") if failed else "reached")
        out[xfer] = CentreHandover(
            xfer, float(r["ts"]), str(d.get("from_hotline") or ""), str(d.get("to_hotline") or ""),
            str(d.get("caller_num") or ""), str(d.get("agent") or ""), str(d.get("category") or ""),
            str(d.get("ticket") or ""), "failed" if failed else "bound", str(d.get("match") or ""),
            str(sender_outcome), str(r["feedback"] or ""), r["transfer_outcome"] is not None,
        )  # fmt: skip
    return list(out.values())


def announced_pending(db: Backend, *, since: float) -> list[RemoteHandover]:
    """Hand-overs another centre announced here since ``since`` that are neither bound nor failed (recorded
    ``handover.announced``): what a restarted receiving daemon still waits for."""
    rows = db.query(
        "SELECT e.ts, e.data FROM events e WHERE e.type = ? AND e.ts >= ? AND NOT EXISTS (SELECT 1 FROM events x"
        " WHERE x.transfer_id = e.transfer_id AND x.type IN (?, ?)) ORDER BY e.ts, e.seq",
        ("handover.announced", since, *LOOP_TYPES),
    )
    out = []
    for r in rows:
        d = orjson.loads(str(r["data"]))
        out.append(RemoteHandover(
            str(d.get("transfer_id") or ""), str(d.get("remote_call_id") or ""), str(d.get("from_hotline") or ""),
            str(d.get("to_hotline") or ""), str(d.get("caller_num") or ""), str(d.get("agent") or ""),
            str(d.get("category") or ""), str(d.get("ticket") or ""), str(d.get("summary") or ""), float(r["ts"]),
        ))  # fmt: skip
    return [h for h in out if h.transfer_id]


def with_received(pairs: dict[tuple[str, str], dict[str, int]], rows: Sequence[CentreHandover],
                  ) -> dict[tuple[str, str], dict[str, int]]:  # fmt: skip
    """The KPI report's transfers by pair and outcome, plus the hand-overs this centre *received* from the
    other one (the sender counts its own transfers already): outcome ``bound`` or ``failed``."""
    out = {pair: dict(counts) for pair, counts in pairs.items()}
    for h in rows:
        if not h.sent_here:
            counts = out.setdefault((h.from_hotline, h.to_hotline), {})
            counts[h.received] = counts.get(h.received, 0) + 1
    return dict(sorted(out.items()))


COLUMNS = ("from_hotline", "to_hotline", "transfer_id", "ticket", "agent", "category", "caller_num", "received",
           "match", "transfer", "feedback")  # fmt: skip


def render_centres(rows: Sequence[CentreHandover], *, label: str, fmt: str = "markdown") -> str:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for h in rows:
            w.writerow([getattr(h, c) for c in COLUMNS])
        return buf.getvalue()
    lines = [f"# 中心间交接 Hand-overs between centres — {label}", ""]
    if not rows:
        return "\n".join([*lines, "无 None.", ""])
    lines += ["| 从 → 到 | 交接 Hand-over | 工单 Ticket | 坐席 Agent | 类别 Category | 接收 Received | 转接 Transfer "
              "| 反馈 Feedback |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for h in rows:
        received = f"{h.received} ({h.match})" if h.match else h.received
        lines.append(f"| {h.from_hotline} → {h.to_hotline} | {h.transfer_id} | {h.ticket or '–'} | {h.agent or '–'} "
                     f"| {h.category or '–'} | {received} | {h.transfer} | {h.feedback or 'none'} |")  # fmt: skip
    return "\n".join([*lines, ""])
