"""Turn one event into the SQL that records it — pure, no database.

Events are consumed *generically* by their TYPE string and ``data()`` dict, so any key may be
missing: every statement tolerates NULLs and later events only fill what is still empty
(``COALESCE``). Every event lands in ``events`` (the full timeline); known types also update the
per-subject tables (calls, legs, transfers, …).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callbridge.store.feedback import feedback_statements
from callbridge.store.projection_subjects import SUBJECT_HANDLERS
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES, EventRecord, Statement, caller_of, to_json

__all__ = ["EventRecord", "Statement", "plan"]


def plan(rec: EventRecord) -> list[Statement]:
    """Statements recording ``rec``, in order."""
    out: list[Statement] = [
        (
            "INSERT INTO events (ts, type, call_id, hotline, transfer_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (rec.ts, rec.type, rec.call_id, rec.hotline, rec.text("transfer_id"), to_json(rec.data)),
        )
    ]
    if rec.call_id:
        # the caller's channel and, on answer, the agent's (the tracker names them channel / agent_channel)
        out.extend(_leg(rec, rec.text(key)) for key in ("channel", "agent_channel") if rec.text(key))
    handler = HANDLERS.get(rec.type)
    if handler is not None:
        out.extend(handler(rec))
    return out


def _call_scope(rec: EventRecord) -> tuple[str, tuple[Any, ...]]:
    # An event naming a hotline concerns that presentation of the call; otherwise every presentation.
    if rec.hotline:
        return "call_id = ? AND hotline = ?", (rec.call_id, rec.hotline)
    return "call_id = ?", (rec.call_id,)


def _leg(rec: EventRecord, channel: str | None) -> Statement:
    is_agent = channel == rec.text("agent_channel")
    answered = rec.ts if rec.type == "call.answered" else None
    ended = rec.ts if rec.type == "call.ended" else None
    return (
        "INSERT INTO legs (call_id, channel, hotline, number, agent, first_ts, last_ts, answered_ts, ended_ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id, channel) DO UPDATE SET"
        " hotline = COALESCE(legs.hotline, excluded.hotline), number = COALESCE(legs.number, excluded.number),"
        " agent = COALESCE(legs.agent, excluded.agent), last_ts = excluded.last_ts,"
        " answered_ts = COALESCE(legs.answered_ts, excluded.answered_ts),"
        " ended_ts = COALESCE(legs.ended_ts, excluded.ended_ts)",
        (
            rec.call_id,
            channel,
            rec.hotline,
            rec.text("agent_num") if is_agent else caller_of(rec),
            rec.text("agent") if is_agent else None,
            rec.ts,
            rec.ts,
            answered,
            ended,
        ),
    )


# --- calls and queues -------------------------------------------------------------------------------


#: ``calls.kind`` of a leg callbridge called into a three-way room (NULL: a citizen's call, counted in KPIs).
THREEWAY_LEG = "threeway_leg"


def _call_offered(rec: EventRecord) -> list[Statement]:
    if not rec.call_id:
        return []
    # a call announced by threeway.leg_called is that transfer's leg: marked and linked, never a citizen's call
    return [
        (
            "INSERT INTO calls (call_id, hotline, caller_num, queue, transfer_id, offered_ts, kind)"
            " VALUES (?, ?, ?, ?, COALESCE(?, (SELECT transfer_id FROM called_legs WHERE call_id = ?)), ?,"
            f" (SELECT '{THREEWAY_LEG}' FROM called_legs WHERE call_id = ?))"
            " ON CONFLICT (call_id, hotline) DO UPDATE SET"
            " caller_num = COALESCE(calls.caller_num, excluded.caller_num),"
            " transfer_id = COALESCE(calls.transfer_id, excluded.transfer_id),"
            " offered_ts = COALESCE(calls.offered_ts, excluded.offered_ts),"
            " kind = COALESCE(calls.kind, excluded.kind)",
            (rec.call_id, rec.hotline or "", caller_of(rec), rec.text("queue"), rec.text("transfer_id"),
             rec.call_id, rec.ts, rec.call_id),
        )
    ]  # fmt: skip


def _threeway_leg_called(rec: EventRecord) -> list[Statement]:
    """Remember the leg's call id before its call.offered arrives (the engine publishes this first)."""
    leg = rec.text("leg_call_id")
    if not leg:
        return []
    xfer = rec.text("transfer_id")
    return [
        (
            "INSERT INTO called_legs (call_id, transfer_id, to_hotline, line, called_ts) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (call_id) DO NOTHING",
            (leg, xfer, rec.text("to_hotline"), rec.text("line"), rec.ts),
        ),
        # the same outcome if the leg's offer was recorded first (events replayed out of order)
        (
            f"UPDATE calls SET kind = '{THREEWAY_LEG}', transfer_id = COALESCE(transfer_id, ?) WHERE call_id = ?",
            (xfer, leg),
        ),
    ]


def _leg_joined_room(rec: EventRecord) -> list[Statement]:
    """A three-way leg is answered when it joins the room (its Originate has no DialEnd of a rung party)."""
    if not rec.call_id:
        return []
    return [
        (
            "UPDATE calls SET answered_ts = COALESCE(answered_ts, ?), wait_s = COALESCE(wait_s, ? - offered_ts),"
            f" outcome = 'answered' WHERE call_id = ? AND kind = '{THREEWAY_LEG}'",
            (rec.ts, rec.ts, rec.call_id),
        )
    ]


def _call_queued(rec: EventRecord) -> list[Statement]:
    if not rec.call_id:
        return []
    where, params = _call_scope(rec)
    return [
        (
            f"UPDATE calls SET queued_ts = COALESCE(queued_ts, ?), queue = COALESCE(queue, ?) WHERE {where}",
            (rec.ts, rec.text("queue"), *params),
        )
    ]


def _call_answered(rec: EventRecord) -> list[Statement]:
    if not rec.call_id:
        return []
    where, params = _call_scope(rec)
    # Without a hotline, the answer belongs to the presentations still unanswered.
    if not rec.hotline:
        where += " AND answered_ts IS NULL"
    return [
        (
            "UPDATE calls SET answered_ts = COALESCE(answered_ts, ?), agent = COALESCE(agent, ?),"
            " wait_s = COALESCE(wait_s, ?, ? - offered_ts), outcome = 'answered'"
            f" WHERE {where}",
            (rec.ts, rec.text("agent"), rec.number("wait_s"), rec.ts, *params),
        )
    ]


def _call_ended(rec: EventRecord) -> list[Statement]:
    if not rec.call_id:
        return []
    return [
        (
            "UPDATE calls SET ended_ts = COALESCE(ended_ts, ?), cause = COALESCE(cause, ?),"
            " wait_s = CASE WHEN answered_ts IS NULL THEN COALESCE(wait_s, ? - offered_ts) ELSE wait_s END,"
            " outcome = CASE WHEN answered_ts IS NOT NULL THEN 'answered' ELSE COALESCE(outcome, 'unanswered') END"
            " WHERE call_id = ? AND ended_ts IS NULL",
            (rec.ts, rec.first("cause_txt", "cause", "reason"), rec.ts, rec.call_id),
        ),
        (
            "UPDATE legs SET ended_ts = COALESCE(ended_ts, ?), last_ts = ? WHERE call_id = ?",
            (rec.ts, rec.ts, rec.call_id),
        ),
        (
            "UPDATE transfers SET to_closed_ts = ? WHERE call_id = ? AND to_closed_ts IS NULL"
            " AND answered_ts IS NOT NULL",
            (rec.ts, rec.call_id),
        ),
        *_transfers_closed_by_call_end(rec),
    ]


_OPEN_TRANSFER = "call_id = ? AND outcome NOT IN ({})".format(", ".join(f"'{o}'" for o in FINAL_TRANSFER_OUTCOMES))


def _transfers_closed_by_call_end(rec: EventRecord) -> list[Statement]:
    """No transfer stays open once its call is over (the last channel hung up).

    The engine reports the end itself (``transfer.completed`` reason ``closed`` after an answer, else
    ``transfer.failed`` reason ``caller_hangup``), but not for a transfer it no longer knows — a daemon
    restart between answer and hang-up, for one. Deriving the same outcome here keeps a transfer's record
    the same whichever way its end was learnt; a final event of the engine arriving later still wins.
    """
    return [
        (
            "UPDATE transfers SET outcome = 'completed', completed_ts = COALESCE(completed_ts, ?),"
            f" from_closed_ts = COALESCE(from_closed_ts, ?) WHERE {_OPEN_TRANSFER} AND answered_ts IS NOT NULL",
            (rec.ts, rec.ts, rec.call_id),
        ),
        (
            "UPDATE transfers SET outcome = 'failed', failed_ts = COALESCE(failed_ts, ?),"
            f" reason = COALESCE(reason, 'caller_hangup') WHERE {_OPEN_TRANSFER} AND answered_ts IS NULL",
            (rec.ts, rec.call_id),
        ),
    ]


def _queue_joined(rec: EventRecord) -> list[Statement]:
    out: list[Statement] = [
        (
            "INSERT INTO queue_waits (call_id, hotline, queue, joined_ts) VALUES (?, ?, ?, ?)",
            (rec.call_id, rec.hotline, rec.text("queue"), rec.ts),
        )
    ]
    if rec.call_id:
        out.extend(_call_queued(rec))
    return out


def _queue_left_as(outcome: str) -> Callable[[EventRecord], list[Statement]]:
    def handler(rec: EventRecord) -> list[Statement]:
        if not rec.call_id:
            return []
        where = "call_id = ? AND left_ts IS NULL"
        params: tuple[Any, ...] = (rec.call_id,)
        if rec.text("queue"):
            where += " AND queue = ?"
            params += (rec.text("queue"),)
        out: list[Statement] = [
            (
                f"UPDATE queue_waits SET left_ts = ?, outcome = ?, wait_s = COALESCE(?, ? - joined_ts) WHERE {where}",
                (
                    rec.ts,
                    rec.text("reason") if outcome == "left" and rec.text("reason") else outcome,
                    rec.number("wait_s"),
                    rec.ts,
                    *params,
                ),
            )
        ]
        if outcome == "abandoned":
            scope, scope_params = _call_scope(rec)
            out.append(
                (
                    f"UPDATE calls SET outcome = 'abandoned', wait_s = COALESCE(wait_s, ?, ? - offered_ts)"
                    f" WHERE {scope} AND answered_ts IS NULL",
                    (rec.number("wait_s"), rec.ts, *scope_params),
                )
            )
        return out

    return handler


def _conference_joined(rec: EventRecord) -> list[Statement]:
    return [*SUBJECT_HANDLERS["conference.joined"](rec), *_leg_joined_room(rec)]


HANDLERS: dict[str, Callable[[EventRecord], list[Statement]]] = {
    "call.offered": _call_offered,
    "call.queued": _call_queued,
    "call.answered": _call_answered,
    "call.ended": _call_ended,
    "queue.joined": _queue_joined,
    "queue.left": _queue_left_as("left"),
    "queue.abandoned": _queue_left_as("abandoned"),
    **SUBJECT_HANDLERS,
    "threeway.leg_called": _threeway_leg_called,
    "conference.joined": _conference_joined,
    "handover.feedback": feedback_statements,
}
