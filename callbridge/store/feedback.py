"""The case loop (双边办结 / 受理反馈闭环): what became of a handed-over case, told by the receiving side.

A hand-over (a transfer, id ``transfer_id``) opens a loop between two hotlines. The receiving side reports
``accepted``, ``dispatched``, ``resolved`` or ``returned`` (with a reason) — from the console or over MQTT
(command ``handover_feedback``) — and callbridge publishes ``handover.feedback`` under the receiving
hotline *and* the sending one (the sender's console and software see it), and records it
(table ``handover_feedback``, schema migration 3). ``resolved`` and ``returned`` close the loop; a loop
of a transfer that reached the destination (answered or completed) and is not closed after N hours is
*open* (``callbridge report --open-loops N``).

:class:`FeedbackDesk` handles the command outside the engine (it is record-keeping: no PBX action): it
knows the hand-overs from the transfer events it is fed, and the older ones from the records.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from callbridge.domain import DomainEvent
from callbridge.errors import CommandError
from callbridge.store.backend import Backend, Row
from callbridge.store.record import EventRecord, Statement

Outcome = Literal["accepted", "dispatched", "resolved", "returned"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "dispatched", "resolved", "returned")
#: Outcomes that close the loop.
CLOSING: tuple[str, ...] = ("resolved", "returned")
#: Transfer outcomes (records) where the case reached the destination: the loop is open from then on.
REACHED: tuple[str, ...] = ("answered", "completed")


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverFeedback(DomainEvent):
    """The receiving side's word on a handed-over case; ``hotline`` is the receiving hotline."""

    TYPE: ClassVar[str] = "handover.feedback"
    DOC: ClassVar[str] = (
        "The receiving side reports what became of a handed-over case (accepted, dispatched, resolved, "
        "returned with a reason), correlated by transfer_id; also published under the sending hotline."
    )

    transfer_id: str = ""
    from_hotline: str = ""
    to_hotline: str = ""
    outcome: str = ""  # accepted | dispatched | resolved | returned
    reason: str = ""  # why it was returned (required for returned)
    agent: str = ""  # who reports (endpoint of the receiving agent)
    ticket: str = ""  # the receiving side's ticket, else the hand-over's
    sender: str = ""  # the sending agent of the hand-over
    caller_num: str = ""

    def also_hotlines(self) -> tuple[str, ...]:
        if self.from_hotline and self.from_hotline != self.hotline:
            return (self.from_hotline,)
        return ()


@dataclass(frozen=True, slots=True)
class Handover:
    """What the desk needs to know of a hand-over to correlate feedback with it."""

    transfer_id: str
    call_id: str
    from_hotline: str
    to_hotline: str
    agent: str = ""
    ticket: str = ""
    caller_num: str = ""


# --- records ---------------------------------------------------------------------------------------------

MIGRATION: tuple[int, str, tuple[str, ...]] = (
    3,
    "hand-over feedback (the case loop)",
    (
        """CREATE TABLE handover_feedback (
            id {serial_pk},
            ts DOUBLE PRECISION NOT NULL,
            transfer_id TEXT NOT NULL,
            call_id TEXT,
            from_hotline TEXT,
            to_hotline TEXT,
            outcome TEXT NOT NULL,
            reason TEXT,
            agent TEXT,
            ticket TEXT
        )""",
        "CREATE INDEX handover_feedback_transfer_idx ON handover_feedback (transfer_id)",
    ),
)


def feedback_statements(rec: EventRecord) -> list[Statement]:
    """The projection of ``handover.feedback``: one row per report (the loop's history)."""
    xfer = rec.text("transfer_id")
    if not xfer:
        return []
    return [(
        "INSERT INTO handover_feedback (ts, transfer_id, call_id, from_hotline, to_hotline, outcome, reason,"
        " agent, ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rec.ts, xfer, rec.call_id, rec.text("from_hotline"), rec.text("to_hotline") or rec.hotline,
         rec.text("outcome") or "", rec.text("reason"), rec.text("agent"), rec.text("ticket")),
    )]  # fmt: skip


def feedback_of(db: Backend, transfer_id: str) -> list[Row]:
    """Every report on one hand-over, oldest first."""
    return db.query(
        "SELECT ts, outcome, reason, agent, ticket FROM handover_feedback WHERE transfer_id = ? ORDER BY ts, id",
        (transfer_id,),
    )


def handover_of(db: Backend, transfer_id: str) -> Handover | None:
    """A hand-over from the records (for feedback on one the daemon did not see this run)."""
    rows = db.query(
        "SELECT transfer_id, call_id, from_hotline, to_hotline, agent, ticket, caller_num FROM transfers"
        " WHERE transfer_id = ?",
        (transfer_id,),
    )
    if not rows or not rows[0]["from_hotline"] or not rows[0]["to_hotline"]:
        return None
    r = rows[0]
    return Handover(str(r["transfer_id"]), str(r["call_id"] or ""), str(r["from_hotline"]), str(r["to_hotline"]),
                    str(r["agent"] or ""), str(r["ticket"] or ""), str(r["caller_num"] or ""))  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpenLoop:
    transfer_id: str
    from_hotline: str
    to_hotline: str
    requested_ts: float
    ticket: str
    last_outcome: str  # the latest report, "" when none came


def open_loops(db: Backend, *, now: float, older_than_s: float) -> list[OpenLoop]:
    """Hand-overs that reached the destination before ``now - older_than_s`` and whose loop is not closed."""
    closing = ", ".join("?" for _ in CLOSING)
    reached = ", ".join("?" for _ in REACHED)
    rows = db.query(
        "SELECT t.transfer_id, t.from_hotline, t.to_hotline, t.requested_ts, t.ticket,"
        " (SELECT f.outcome FROM handover_feedback f WHERE f.transfer_id = t.transfer_id"
        "  ORDER BY f.ts DESC, f.id DESC LIMIT 1) AS last_outcome"
        f" FROM transfers t WHERE t.outcome IN ({reached}) AND t.requested_ts < ?"
        " AND NOT EXISTS (SELECT 1 FROM handover_feedback c WHERE c.transfer_id = t.transfer_id"
        f"  AND c.outcome IN ({closing}))"
        " ORDER BY t.from_hotline, t.to_hotline, t.requested_ts",
        (*REACHED, now - older_than_s, *CLOSING),
    )
    return [OpenLoop(str(r["transfer_id"]), str(r["from_hotline"] or ""), str(r["to_hotline"] or ""),
                     float(r["requested_ts"]), str(r["ticket"] or ""), str(r["last_outcome"] or ""))
            for r in rows]  # fmt: skip


def loops_by_pair(loops: Iterable[OpenLoop]) -> dict[tuple[str, str], list[OpenLoop]]:
    out: dict[tuple[str, str], list[OpenLoop]] = {}
    for loop in loops:
        out.setdefault((loop.from_hotline, loop.to_hotline), []).append(loop)
    return out


def render_open_loops(loops: Sequence[OpenLoop], *, now: float, hours: float, fmt: str = "markdown") -> str:
    """The report of open loops per hotline pair (markdown for the brief, csv for the sheet)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["from_hotline", "to_hotline", "transfer_id", "ticket", "age_h", "last_feedback"])
        for lp in loops:
            w.writerow([lp.from_hotline, lp.to_hotline, lp.transfer_id, lp.ticket,
                        f"{(now - lp.requested_ts) / 3600:.1f}", lp.last_outcome or "none"])  # fmt: skip
        return buf.getvalue()
    lines = [f"# Open case loops older than {hours:g} h", ""]
    if not loops:
        return "\n".join([*lines, "No open loop.", ""])
    lines += ["| from → to | open | oldest (h) | hand-overs (last feedback) |", "|---|---:|---:|---|"]
    for (a, b), group in loops_by_pair(loops).items():
        oldest = max(now - lp.requested_ts for lp in group) / 3600
        items = ", ".join(f"{lp.transfer_id} ({lp.last_outcome or 'none'})" for lp in group)
        lines.append(f"| {a} → {b} | {len(group)} | {oldest:.1f} | {items} |")
    return "\n".join([*lines, ""])


# --- the command ---------------------------------------------------------------------------------------


class FeedbackDesk:
    """Handles ``handover_feedback``: correlate by transfer id, check the reporter's scope, publish the event.

    Fed every event (an event sink) to learn the hand-overs; ``lookup`` reads older ones from the records.
    """

    def __init__(
        self,
        publish: Callable[[Sequence[DomainEvent]], None],
        *,
        lookup: Callable[[str], Handover | None] | None = None,
        clock: Callable[[], float],
        remember: int = 10_000,
    ) -> None:
        self.publish = publish
        self.lookup = lookup
        self.clock = clock
        self._remember = remember
        self._handovers: dict[str, Handover] = {}

    def __call__(self, events: Sequence[DomainEvent]) -> None:
        """The event sink: remember each hand-over from its ``transfer.requested`` — or, for one from another
        centre, its ``handover.bound`` here (this centre's call; see callbridge/centres/)."""
        for e in events:
            if e.TYPE in ("transfer.requested", "handover.bound"):
                self._learn(e)

    def _learn(self, e: DomainEvent) -> None:
        d = e.data()
        xfer = str(d.get("transfer_id") or "")
        if not xfer:
            return
        self._handovers[xfer] = Handover(xfer, e.call_id or "", str(d.get("from_hotline") or e.hotline or ""),
                                         str(d.get("to_hotline") or ""), str(d.get("agent") or ""),
                                         str(d.get("ticket") or ""), str(d.get("caller_num") or ""))  # fmt: skip
        while len(self._handovers) > self._remember:  # oldest first (dicts keep insertion order)
            del self._handovers[next(iter(self._handovers))]

    def handover(self, transfer_id: str) -> Handover | None:
        known = self._handovers.get(transfer_id)
        if known is None and self.lookup is not None:
            known = self.lookup(transfer_id)
        return known

    def handle(self, body: Any, scope: frozenset[str] | None) -> dict[str, Any]:
        """``body`` is a validated ``HandoverFeedbackCommand``; raises :class:`CommandError` to refuse."""
        h = self.handover(body.transfer_id)
        if h is None:
            raise CommandError("unknown_handover", f"no hand-over {body.transfer_id!r}")
        if scope is not None and h.to_hotline not in scope:
            raise CommandError(
                "forbidden", f"feedback on {h.transfer_id} comes from {h.to_hotline}: scope {sorted(scope)}"
            )
        if body.outcome == "returned" and not (body.reason or "").strip():
            raise CommandError("invalid", "a returned case needs a reason")
        agent = body.agent.split("/", 1)[-1]
        event = HandoverFeedback(
            ts=self.clock(), call_id=h.call_id or None, hotline=h.to_hotline, transfer_id=h.transfer_id,
            from_hotline=h.from_hotline, to_hotline=h.to_hotline, outcome=body.outcome, reason=body.reason or "",
            agent=agent, ticket=body.ticket or h.ticket, sender=h.agent, caller_num=h.caller_num,
        )  # fmt: skip
        self.publish([event])
        return {"transfer_id": h.transfer_id, "outcome": body.outcome, "from_hotline": h.from_hotline,
                "to_hotline": h.to_hotline}  # fmt: skip
