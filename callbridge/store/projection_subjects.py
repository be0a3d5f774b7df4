"""SQL for the subjects beside calls: transfers (hand-over data, outcome, 双边办结 times), conferences,
overflows, backup-line uses, nuisance flags and commands. Pure; see :mod:`callbridge.store.projection`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callbridge.store.record import FINAL_TRANSFER_OUTCOMES, EventRecord, Statement, caller_of, to_json

# --- transfers ----------------------------------------------------------------------------------------

_TRANSFER_FIELDS = (
    "call_id",
    "from_hotline",
    "to_hotline",
    "caller_num",
    "agent",
    "category",
    "ticket",
    "summary",
    "mode",
)


def _transfer_upsert(rec: EventRecord) -> Statement | None:
    """Create the transfer row if this is the first event seen for it; fill any hand-over data it carries."""
    xfer = rec.text("transfer_id")
    if not xfer:
        return None
    values = {
        "call_id": rec.call_id,
        "from_hotline": rec.text("from_hotline") or (rec.hotline if rec.type == "transfer.requested" else None),
        "to_hotline": rec.text("to_hotline"),
        "caller_num": caller_of(rec),
        "agent": rec.text("agent") if rec.type == "transfer.requested" else None,
        "category": rec.text("category"),
        "ticket": rec.text("ticket"),
        "summary": rec.text("summary"),
        "mode": rec.text("mode"),
    }
    cols = ", ".join(_TRANSFER_FIELDS)
    marks = ", ".join("?" for _ in _TRANSFER_FIELDS)
    updates = ", ".join(f"{c} = COALESCE(transfers.{c}, excluded.{c})" for c in _TRANSFER_FIELDS)
    return (
        f"INSERT INTO transfers (transfer_id, outcome, {cols}) VALUES (?, 'requested', {marks})"
        f" ON CONFLICT (transfer_id) DO UPDATE SET {updates}",
        (xfer, *(values[c] for c in _TRANSFER_FIELDS)),
    )


def _transfer_step(
    ts_column: str | None,
    outcome: str | None,
    *,
    final: bool = False,
    extra: str = "",
    extra_keys: tuple[str, ...] = (),
) -> Callable[[EventRecord], list[Statement]]:
    """A transfer event that stamps a time column and (maybe) moves the outcome.

    ``extra`` is one more SET clause whose ``?`` take the payload keys ``extra_keys`` (``"@ts"`` = the event time,
    ``"a|b"`` = the first of ``a`` and ``b`` present).
    """

    def handler(rec: EventRecord) -> list[Statement]:
        first = _transfer_upsert(rec)
        if first is None:
            return []
        sets: list[str] = []
        params: list[Any] = []
        if ts_column:
            sets.append(f"{ts_column} = COALESCE({ts_column}, ?)")
            params.append(rec.ts)
        if outcome and final:
            sets.append("outcome = ?")
            params.append(outcome)
        elif outcome:
            finals = ", ".join(f"'{o}'" for o in FINAL_TRANSFER_OUTCOMES)
            sets.append(f"outcome = CASE WHEN outcome IN ({finals}) THEN outcome ELSE ? END")
            params.append(outcome)
        if extra:
            sets.append(extra)
            params.extend(rec.ts if k == "@ts" else rec.first(*k.split("|")) for k in extra_keys)
        params.append(rec.text("transfer_id"))
        return [first, (f"UPDATE transfers SET {', '.join(sets)} WHERE transfer_id = ?", tuple(params))]

    return handler


def _transfer_backup_line(rec: EventRecord) -> list[Statement]:
    out = _transfer_step(None, None, extra="backup_line = 1, line = COALESCE(?, line)", extra_keys=("line",))(rec)
    out.append(
        (
            "INSERT INTO backup_line_uses (ts, call_id, transfer_id, from_hotline, to_hotline, line, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                rec.ts,
                rec.call_id,
                rec.text("transfer_id"),
                rec.text("from_hotline") or rec.hotline,
                rec.text("to_hotline"),
                rec.text("line"),
                rec.text("reason"),
            ),
        )
    )
    return out


# --- conferences, overflow, nuisance, commands ----------------------------------------------------------


def _room(rec: EventRecord) -> str | None:
    return rec.first("room", "conference", "conference_id", "bridge")


def _conference(kind: str) -> Callable[[EventRecord], list[Statement]]:
    """Conference rows: one per *use* of a room (room names are reused), i.e. the room's open row."""

    def handler(rec: EventRecord) -> list[Statement]:
        room = _room(rec) or (
            f"threeway:{rec.text('transfer_id') or rec.call_id}" if kind in ("agent_left", "threeway") else None
        )
        if not room:
            return []
        open_row = "room = ? AND ended_ts IS NULL"
        out: list[Statement] = []
        if kind != "ended":
            out.append(
                (
                    "INSERT INTO conferences (room, call_id, hotline, transfer_id, started_ts)"
                    " SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS"
                    " (SELECT 1 FROM conferences WHERE room = ? AND ended_ts IS NULL)",
                    (room, rec.call_id, rec.hotline, rec.text("transfer_id"), rec.ts, room),
                )
            )
            out.append(
                (
                    "UPDATE conferences SET call_id = COALESCE(call_id, ?), hotline = COALESCE(hotline, ?),"
                    f" transfer_id = COALESCE(transfer_id, ?) WHERE {open_row}",
                    (rec.call_id, rec.hotline, rec.text("transfer_id"), room),
                )
            )
        column = {
            "started": "started_ts = COALESCE(started_ts, ?)",
            "threeway": "started_ts = COALESCE(started_ts, ?)",
            "ended": "ended_ts = ?",
            "agent_left": "agent_left_ts = COALESCE(agent_left_ts, ?)",
            "joined": "joins = joins + 1, started_ts = COALESCE(started_ts, ?)",
            "left": "leaves = leaves + 1, started_ts = COALESCE(started_ts, ?)",
        }[kind]
        out.append((f"UPDATE conferences SET {column} WHERE {open_row}", (rec.ts, room)))
        if kind == "agent_left" and rec.text("transfer_id"):
            # The sending agent left the hand-over: the sending side is done (one half of 双边办结).
            out.append(
                (
                    "UPDATE transfers SET from_closed_ts = COALESCE(from_closed_ts, ?) WHERE transfer_id = ?",
                    (rec.ts, rec.text("transfer_id")),
                )
            )
        return out

    return handler


def _overflow_started(rec: EventRecord) -> list[Statement]:
    return [
        (
            "INSERT INTO overflows (hotline, queue, target, reason, started_ts) VALUES (?, ?, ?, ?, ?)",
            (
                rec.hotline or rec.text("from_hotline"),
                rec.text("queue"),
                rec.text("target") or rec.text("to_hotline"),
                rec.text("reason"),
                rec.ts,
            ),
        )
    ]


def _overflow_ended(rec: EventRecord) -> list[Statement]:
    where, params = "ended_ts IS NULL", ()
    hotline = rec.hotline or rec.text("from_hotline")
    if hotline:
        where += " AND hotline = ?"
        params += (hotline,)  # type: ignore[assignment]
    if rec.text("queue"):
        where += " AND queue = ?"
        params += (rec.text("queue"),)  # type: ignore[assignment]
    return [(f"UPDATE overflows SET ended_ts = ? WHERE {where}", (rec.ts, *params))]


def _nuisance(rec: EventRecord) -> list[Statement]:
    return [
        (
            "INSERT INTO nuisance_flags (ts, hotline, caller_num, call_id, reason) VALUES (?, ?, ?, ?, ?)",
            (rec.ts, rec.hotline, caller_of(rec), rec.call_id, rec.text("reason")),
        )
    ]


def _command(rec: EventRecord) -> list[Statement]:
    return [
        (
            "INSERT INTO commands (ts, call_id, hotline, command, source, agent, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                rec.ts,
                rec.call_id,
                rec.hotline,
                rec.first("command", "verb", "name", "action"),
                rec.text("source") or rec.text("via"),
                rec.text("agent"),
                to_json(rec.data),
            ),
        )
    ]


SUBJECT_HANDLERS: dict[str, Callable[[EventRecord], list[Statement]]] = {
    "transfer.requested": _transfer_step("requested_ts", None),
    "transfer.refused": _transfer_step(
        "failed_ts", "refused", final=True, extra="reason = COALESCE(?, reason)", extra_keys=("reason",)
    ),
    "transfer.ringing": _transfer_step("ringing_ts", "ringing"),
    "transfer.answered": _transfer_step(
        "answered_ts", "answered", extra="dest_agent = COALESCE(dest_agent, ?)", extra_keys=("dest_agent|answered_by",)
    ),
    "transfer.completed": _transfer_step(
        "completed_ts",
        "completed",
        final=True,
        extra="from_closed_ts = COALESCE(from_closed_ts, ?)",
        extra_keys=("@ts",),
    ),
    "transfer.failed": _transfer_step(
        "failed_ts", "failed", final=True, extra="reason = COALESCE(?, reason)", extra_keys=("reason",)
    ),
    "transfer.returned": _transfer_step(
        "returned_ts", "returned", final=True, extra="reason = COALESCE(?, reason)", extra_keys=("reason",)
    ),
    "transfer.backup_line": _transfer_backup_line,
    "transfer.number_verified": _transfer_step(
        None,
        None,
        extra="number_verified = 1, seen_num = COALESCE(?, seen_num)",
        extra_keys=("seen_num|presented_num",),
    ),
    "transfer.number_mismatch": _transfer_step(
        None,
        None,
        extra="number_verified = 0, seen_num = COALESCE(?, seen_num)",
        extra_keys=("seen_num|presented_num",),
    ),
    "threeway.started": _conference("threeway"),
    "threeway.agent_left": _conference("agent_left"),
    "conference.started": _conference("started"),
    "conference.joined": _conference("joined"),
    "conference.left": _conference("left"),
    "conference.ended": _conference("ended"),
    "queue.overflow_started": _overflow_started,
    "queue.overflow_ended": _overflow_ended,
    "nuisance.flagged": _nuisance,
    "command.received": _command,
}
