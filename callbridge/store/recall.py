"""What callbridge knows again after its own restart, read from its records before AMI is touched.

The PBX keeps its calls while callbridge is down; the records keep what callbridge had learnt of them. At
start-up (:meth:`callbridge.app.App`, with the records store) :func:`recall` reads the calls whose row is
still open and hands them over:

* to the tracker (:attr:`CallTracker.known`): at the first resync a listed call is adopted with its hotline,
  caller, answer and agent — not offered again, its events under its hotline, one record row — and a known
  call the PBX no longer has is ended with reason ``ended_while_unobserved`` at the last moment it was known
  alive (the last event recorded before callbridge stopped watching);
* to the engine: each unfinished transfer of those calls (its hand-over data, line, answer, the channels its
  events named), so the engine follows it on (``transfer.completed`` when both sides close);
* to the live board: today's recorded events are fed again, so the wallboard's counters, waiting calls and
  transfers in progress are those of before the restart, not zeros.

Transfers not restored (reported in the log): a three-way transfer not answered yet (its room and legs are
the PBX's alone), and one whose rule is no longer in the dialplan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from callbridge.calls.model import KnownCall
from callbridge.engine import conference as conf
from callbridge.engine import transfer as tx
from callbridge.engine.transfer import Transfer
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES, EventRecord

if TYPE_CHECKING:
    from callbridge.calls.tracker import CallTracker
    from callbridge.dialplan.plan import Dialplan
    from callbridge.engine.core import Engine
    from callbridge.store.live import LiveBoard
    from callbridge.store.records import RecordStore

log = structlog.get_logger("callbridge.store.recall")

S = tx.TState
_FINAL = frozenset(f"transfer.{o}" for o in FINAL_TRANSFER_OUTCOMES)
#: transfer event → the state the transfer is in after it (events not listed leave the state as it was)
_STATE_AFTER = {"transfer.requested": S.UNKNOWN, "transfer.ringing": S.RINGING, "transfer.backup_line": S.ROUTING,
                "transfer.answered": S.ANSWERED, "threeway.started": S.CONFERENCE}  # fmt: skip


@dataclass
class Recalled:
    """What the records say about the calls callbridge left open."""

    calls: dict[str, KnownCall] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    board_events: int = 0


def recall(store: RecordStore, *, tracker: CallTracker, engine: Engine, plan: Dialplan,
           board: LiveBoard | None, now: float) -> Recalled:  # fmt: skip
    """Read the open calls, their transfers and today's events; hand them to the tracker, engine and board."""
    out = Recalled(calls=open_calls(store))
    tracker.known.update(out.calls)
    out.transfers = open_transfers(store, list(out.calls), plan)
    for t in out.transfers:
        if t.id not in engine.transfers:
            engine.add(t)
    if board is not None:
        for rec in board_events(store, day_start(now)):
            board.feed(rec)  # its alarms were recorded (and published) when they were raised
            out.board_events += 1
    log.info("records.recalled", open_calls=len(out.calls), transfers=[t.id for t in out.transfers],
             board_events=out.board_events)  # fmt: skip
    return out


def day_start(now: float) -> float:
    """Local midnight of ``now``'s day (the board counts by the local day, as the report does)."""
    return datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def open_calls(store: RecordStore) -> dict[str, KnownCall]:
    """Calls whose record is not closed, one per call id (a call has a row per hotline it was offered to: the
    first hotline is the call's own, as the tracker names it)."""
    rows = store.backend.query(
        "SELECT call_id, hotline, caller_num, queue, agent, offered_ts, answered_ts FROM calls"
        " WHERE ended_ts IS NULL ORDER BY offered_ts, call_id"
    )
    if not rows:
        return {}
    by_call: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_call.setdefault(r["call_id"], []).append(r)
    last = _last_alive(store)
    known: dict[str, KnownCall] = {}
    for call_id, presentations in by_call.items():
        first = next((r for r in presentations if r["hotline"]), presentations[0])
        answered = [r for r in presentations if r["answered_ts"] is not None]
        offered = min(float(r["offered_ts"]) for r in presentations if r["offered_ts"] is not None) \
            if any(r["offered_ts"] is not None for r in presentations) else 0.0
        known[call_id] = KnownCall(
            call_id=call_id, hotline=first["hotline"] or None, caller_num=first["caller_num"] or "",
            offered_ts=offered, answered_ts=min(float(r["answered_ts"]) for r in answered) if answered else None,
            agent=(answered[0]["agent"] or "") if answered else "", queue=first["queue"] or "",
            last_seen=last(call_id, offered),
        )  # fmt: skip
    return known


def _last_alive(store: RecordStore) -> Any:
    """``last(call_id, offered)``: the last moment a call was known alive — the last event recorded before
    callbridge stopped watching after the call's own last event (a later ``ami.connected`` begins a session
    that no longer saw it; without one, the last event of all)."""
    q = store.backend.query
    own = {r["call_id"]: float(r["ts"]) for r in q(
        "SELECT call_id, MAX(ts) AS ts FROM events WHERE call_id IN (SELECT call_id FROM calls WHERE ended_ts IS NULL)"
        " GROUP BY call_id")}  # fmt: skip
    connects = [float(r["ts"]) for r in q("SELECT ts FROM events WHERE type = 'ami.connected' ORDER BY ts")]
    everything = q("SELECT MAX(ts) AS ts FROM events")[0]["ts"]

    def last(call_id: str, offered: float) -> float:
        mine = own.get(call_id, offered)
        after = next((c for c in connects if c > mine), None)
        if after is None:
            return max(mine, float(everything or mine))
        before = q("SELECT MAX(ts) AS ts FROM events WHERE ts < ?", (after,))[0]["ts"]
        return max(mine, float(before or mine))

    return last


def _events_of(store: RecordStore, call_ids: list[str]) -> Iterator[EventRecord]:
    for start in range(0, len(call_ids), 500):
        chunk = call_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for r in store.backend.query(
            f"SELECT ts, type, call_id, hotline, data FROM events WHERE call_id IN ({marks}) ORDER BY seq", chunk
        ):
            yield EventRecord(r["type"], float(r["ts"]), r["call_id"], r["hotline"], orjson.loads(r["data"]))


def open_transfers(store: RecordStore, call_ids: list[str], plan: Dialplan) -> list[Transfer]:
    """The unfinished transfers of ``call_ids``, rebuilt from their recorded events."""
    caller_channel: dict[str, str] = {}
    steps: dict[str, list[EventRecord]] = {}
    rung: dict[str, list[EventRecord]] = {}  # call id → its call.ringing events (a transfer's leg is one of them)
    for rec in _events_of(store, call_ids):
        if rec.type == "call.offered" and rec.call_id and rec.text("channel"):
            caller_channel.setdefault(rec.call_id, rec.text("channel") or "")
        elif rec.type == "call.ringing" and rec.call_id:
            rung.setdefault(rec.call_id, []).append(rec)
        xfer = rec.text("transfer_id")
        if xfer and (rec.type.startswith("transfer.") or rec.type.startswith("threeway.")):
            steps.setdefault(xfer, []).append(rec)
    out: list[Transfer] = []
    for xfer, recs in steps.items():
        if recs[0].type != "transfer.requested" or any(r.type in _FINAL for r in recs):
            continue
        t = _rebuilt(xfer, recs, caller_channel.get(recs[0].call_id or "", ""), plan)
        if t is not None:
            if t.state is S.RINGING and not t.dest_channel:
                t.dest_channel = _ringing_leg(t, recs, rung.get(t.call_id, []))
            out.append(t)
    return out


def _ringing_leg(t: Transfer, recs: list[EventRecord], rung: list[EventRecord]) -> str:
    """The destination leg of a ringing transfer: the last leg the call rang on one of the transfer's lines
    since the transfer rang (its DialEnd ANSWER is matched against it after the restart)."""
    since = max((r.ts for r in recs if r.type == "transfer.ringing"), default=t.created)
    endpoints = {line.rpartition("@")[2] for line in t.lines if "@" in line}
    legs = [r.text("agent_channel") for r in rung if r.ts >= since - 1.0 and r.text("agent") in endpoints]
    return next((leg for leg in reversed(legs) if leg), "")


def _rebuilt(xfer: str, recs: list[EventRecord], caller_channel: str, plan: Dialplan) -> Transfer | None:
    req = recs[0]
    to, mode = req.text("to_hotline") or "", req.text("mode") or "blind"
    src = req.text("from_hotline") or req.hotline or ""
    rules = [r for r in plan.rules.values() if r.from_hotline == src and r.to_hotline == to]
    rule = next((r for r in rules if r.mode == mode), rules[0] if rules else None)
    if rule is None or not caller_channel or to not in plan.hotlines:
        log.warning("records.transfer_not_restored", transfer_id=xfer, reason="no rule" if rule is None else
                    "no caller channel" if not caller_channel else "unknown hotline")  # fmt: skip
        return None
    expert = rule.target == "expert" and mode != "threeway"  # as the engine chose the context
    t = Transfer(
        id=xfer, call_id=req.call_id or "", rule=rule, mode=mode, from_hotline=src, to_hotline=to,
        agent=req.text("agent") or "", agent_channel="", caller_channel=caller_channel,
        caller_num=req.text("caller_num") or "", category=req.text("category") or "", ticket=req.text("ticket") or "",
        summary=req.text("summary") or "", source=req.text("source") or "command",
        context=f"cb-expert-{to}" if expert else f"cb-to-{to}", lines=() if expert else plan.lines_for(to),
        verify=plan.trunk_to(to) is not None and rule.carry_number and not expert, created=req.ts,
    )  # fmt: skip
    for rec in recs:
        t.state = _STATE_AFTER.get(rec.type, t.state)
        t.line = rec.text("line") or t.line
        if rec.type == "transfer.answered":
            t.dest_channel = rec.text("answered_by") or t.dest_channel
        elif rec.type in ("transfer.number_verified", "transfer.number_mismatch"):
            t.number_checked = True
        t.history.append((rec.ts, t.state.value, t.state.value, f"recalled {rec.type}"))
    if mode == "threeway" and t.state is not S.ANSWERED:
        log.warning("records.transfer_not_restored", transfer_id=xfer, reason="three-way not answered yet")
        return None
    if mode == "threeway":
        t.room = conf.room_name(t.id)
    return t


def board_events(store: RecordStore, since: float) -> Iterator[EventRecord]:
    """Events since ``since`` and every event of the calls still open (offered before it), in recorded order."""
    cols = "SELECT seq, ts, type, call_id, hotline, data FROM events"
    rows = store.backend.query(  # a UNION, not an OR: each half is read by its own index on a large table
        f"{cols} WHERE ts >= ? UNION {cols} WHERE call_id IN (SELECT call_id FROM calls WHERE ended_ts IS NULL)"
        " ORDER BY seq",
        (since,),
    )
    for r in rows:
        yield EventRecord(r["type"], float(r["ts"]), r["call_id"], r["hotline"], orjson.loads(r["data"]))
