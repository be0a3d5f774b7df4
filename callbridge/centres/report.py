"""``callbridge report --centres``: the hand-overs between the two centres, with both outcomes (issue 21.3).

Either centre's records hold the pair's loop: the receiving centre's ``handover.bound`` / ``handover.failed``
(its own events at the receiver, the peer's events taken in over the link at the sender), the case
feedback (``handover_feedback``: the receiver's own, or taken in at the sender) and, at the sending
centre, the transfer itself (``transfers``). One row per hand-over: how the receiving centre bound it
(``header`` / ``caller_number``) or that it failed, the sending side's transfer outcome, the latest
feedback, and what became of the call at the receiver (``handover.answered``: by which agent after how
long, or ``handover.abandoned``) — the same rows on both sides, so the two centres' reports can be laid
side by side.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence

import orjson

from callbridge.centres.binder import RemoteHandover
from callbridge.store.backend import Backend

LOOP_TYPES = ("handover.bound", "handover.failed")
#: What became of a bound call at the receiving centre (an agent there answered it, or the caller gave up).
REACHED_TYPES = ("handover.answered", "handover.abandoned")


@dataclasses.dataclass(frozen=True, slots=True)
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
    reached: str = ""  # answered | abandoned | "" (at the receiving centre, as it reported)
    answered_agent: str = ""  # the receiving centre's agent who answered
    wait_s: float | None = None  # how long the caller waited at the receiving centre (to the answer, or abandon)
    reached_reason: str = ""  # why an abandoned one ended (abandoned_in_queue, hangup …)

    def at_receiver(self) -> str:
        """The receiving centre's outcome in words: who answered after how long, or the abandon."""
        wait = f" after {self.wait_s:g} s" if self.wait_s is not None else ""
        if self.reached == "answered":
            return f"answered at {self.to_hotline} by {self.answered_agent}{wait}"
        if self.reached == "abandoned":
            return f"abandoned at {self.to_hotline}{wait} ({self.reached_reason or 'hangup'})"
        return ""


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
    return _with_reached(db, list(out.values()), since=start)


def _with_reached(db: Backend, rows: list[CentreHandover], *, since: float) -> list[CentreHandover]:
    """Each bound hand-over with the receiving centre's report of its call: the first answer or abandon."""
    found = db.query(
        "SELECT e.type, e.transfer_id, e.data FROM events e WHERE e.type IN (?, ?) AND e.ts >= ? ORDER BY e.ts, e.seq",
        (*REACHED_TYPES, since),
    )
    reached: dict[str, tuple[str, dict[str, object]]] = {}
    for r in found:
        reached.setdefault(str(r["transfer_id"] or ""), (str(r["type"]), orjson.loads(str(r["data"]))))
    out = []
    for h in rows:
        got = reached.get(h.transfer_id) if h.received == "bound" else None
        if got is None:
            out.append(h)
            continue
        kind, d = got
        wait = d.get("wait_s")
        out.append(dataclasses.replace(h, reached=kind.split(".")[1], answered_agent=str(d.get("answered_agent") or ""),
                                       wait_s=float(wait) if isinstance(wait, int | float) else None,
                                       reached_reason=str(d.get("reason") or "")))  # fmt: skip
    return out


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
           "match", "transfer", "feedback", "reached", "answered_agent", "wait_s", "at_receiver")  # fmt: skip


def render_centres(rows: Sequence[CentreHandover], *, label: str, fmt: str = "markdown") -> str:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for h in rows:
            w.writerow([_cell(h, c) for c in COLUMNS])
        return buf.getvalue()
    lines = [f"# 中心间交接 Hand-overs between centres — {label}", ""]
    if not rows:
        return "\n".join([*lines, "无 None.", ""])
    lines += ["| 从 → 到 | 交接 Hand-over | 工单 Ticket | 坐席 Agent | 类别 Category | 接收 Received | 转接 Transfer "
              "| 反馈 Feedback | 对方 At the receiver |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for h in rows:
        received = f"{h.received} ({h.match})" if h.match else h.received
        lines.append(f"| {h.from_hotline} → {h.to_hotline} | {h.transfer_id} | {h.ticket or '–'} | {h.agent or '–'} "
                     f"| {h.category or '–'} | {received} | {h.transfer} | {h.feedback or 'none'} "
                     f"| {h.at_receiver() or '–'} |")  # fmt: skip
    return "\n".join([*lines, ""])


def _cell(h: CentreHandover, column: str) -> object:
    if column == "at_receiver":
        return h.at_receiver()
    value = getattr(h, column)
    return "" if value is None else value
