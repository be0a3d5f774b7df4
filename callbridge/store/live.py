"""Live state for the wallboard and ``/metrics`` — a pure aggregator fed one event at a time.

``LiveBoard.feed(event)`` updates in-memory counters (waiting calls, agents, today's answer rate, active
transfers between hotlines, recent alarms) and returns the alarms it raises itself
(:class:`~callbridge.store.events.AnswerRateLow`, once per crossing under the target; re-armed when
the rate is back at or above it). ``snapshot(now)`` is the JSON the wallboard draws. No I/O, no asyncio.

What was offered, answered and abandoned is decided by :class:`~callbridge.store.offers.OfferBook` — the
records' KPIs run the same book over the recorded events, so the wallboard, ``/metrics``, ``/api/kpi`` and
the report count alike (a transfer in is offered to the receiving hotline; overflow to remote seats is not an
abandon). "Today" is the day of the offer, by the board's time zone: a call offered before midnight and
answered after it counts for the day it was offered, as in a report of that day. The answer rate is the
KPI report's (:func:`callbridge.store.kpi.answer_rate`): answered / (answered + abandoned) over today's
finished offers. Calls still waiting are shown as ``waiting``, not counted as lost — so a hotline's first
waiting call of the day does not turn its tile red.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, ClassVar

from callbridge.domain import DomainEvent
from callbridge.store.events import AnswerRateLow
from callbridge.store.kpi import DEFAULT_ANSWER_RATE_TARGET, answer_rate, percentile
from callbridge.store.offers import Change, Offer, OfferBook
from callbridge.store.periods import iso
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES, EventRecord

DEFAULT_HOTLINE_NAMES: dict[str, str] = {
    "12345": "政务服务 Citizen service",
    "110": "报警 Police",
    "119": "火警 Fire",
    "120": "急救 Ambulance",
    "122": "交通事故 Traffic police",
}

#: Event types shown in "recent alarms", with the Chinese · English label used on the board.
ALARM_LABELS: dict[str, str] = {
    "kpi.answer_rate_low": "接通率低 Answer rate low",
    "records.backlog": "记录积压 Records backlog",
    "outbox.full": "消息积压 Outbox full",
    "transfer.failed": "转接失败 Transfer failed",
    "transfer.number_mismatch": "号码未携带 Number not carried",
    "transfer.backup_line": "备用线路 Backup line",
    "queue.overflow_started": "溢出 Overflow",
    "nuisance.flagged": "骚扰来电 Nuisance caller",
    "ami.lost": "PBX连接中断 AMI lost",
    "pbx.restarted": "PBX重启 PBX restarted",
    "dialplan.rejected": "拨号计划被拒 Dialplan rejected",
}

#: Asterisk queue-member states that mean "free to take a call" (numeric codes and spelled forms).
_FREE_STATES = {"1", "not_in_use", "not_inuse", "free", "idle", "available"}


@dataclass(slots=True)
class _Hotline:
    waiting: dict[str, float] = field(default_factory=dict)  # call_id → since
    members: dict[str, bool] = field(default_factory=dict)  # agent → free?
    agents_free_reported: int | None = None  # a count given by the source itself wins
    offered: int = 0  # today
    answered: int = 0
    abandoned: int = 0
    # today's waits, 8 bytes each (a list of floats took 32: the flood of issue 17.5 grew it 0.7 MB a flood)
    waits: array[float] = field(default_factory=lambda: array("d"))
    overflow_since: float | None = None
    alarmed: bool = False


def _is_free(data: Mapping[str, Any]) -> bool:
    if data.get("paused") in (True, 1, "1", "true") or data.get("in_call") in (True, 1, "1", "true"):
        return False
    if "free" in data and isinstance(data["free"], bool):
        return data["free"]
    status = str(data.get("status", data.get("state", ""))).strip().lower().replace(" ", "_")
    return status in _FREE_STATES


class LiveBoard:
    def __init__(
        self,
        hotlines: Sequence[str] = (),
        *,
        targets: Mapping[str, float] | None = None,
        default_target: float = DEFAULT_ANSWER_RATE_TARGET,
        names: Mapping[str, str] | None = None,
        min_offered: int = 5,
        max_alarms: int = 20,
        tz: tzinfo | None = None,
    ) -> None:
        self.targets = dict(targets or {})
        self.default_target = default_target
        self.names = {**DEFAULT_HOTLINE_NAMES, **(names or {})}
        self.min_offered = min_offered
        self.tz = tz
        self.version = 0  # bumped per event; lets the SSE stream skip unchanged snapshots
        self._lines: dict[str, _Hotline] = {h: _Hotline() for h in hotlines}
        self._call_hotline: dict[str, str] = {}
        self._queue_hotline: dict[str, str] = {}
        self._offers = OfferBook()  # what was offered, answered, abandoned: the one definition
        self._day: date | None = None
        self._active: dict[str, dict[str, Any]] = {}  # transfer_id → flow
        self._flows_today: Counter[tuple[str, str]] = Counter()
        self.alarms: deque[dict[str, Any]] = deque(maxlen=max_alarms)
        # Process-lifetime counters (Prometheus counters must never go down).
        self.offered_total: Counter[str] = Counter()
        self.answered_total: Counter[str] = Counter()
        self.abandoned_total: Counter[str] = Counter()
        self.transfers_total: Counter[tuple[str, str, str]] = Counter()  # (from, to, outcome)
        self.number_checks_total: Counter[tuple[str, str, str]] = Counter()  # (from, to, verified|mismatch)
        self.overflow_seconds_total: dict[str, float] = {}
        self.nuisance_total: Counter[str] = Counter()

    # --- helpers -------------------------------------------------------------------------------------------

    def target(self, hotline: str) -> float:
        return self.targets.get(hotline, self.default_target)

    def _line(self, hotline: str) -> _Hotline:
        return self._lines.setdefault(hotline, _Hotline())

    def _day_of(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.tz).date() if self.tz else datetime.fromtimestamp(ts).date()

    def _roll_day(self, ts: float) -> None:
        day = self._day_of(ts)
        if self._day is None or day > self._day:
            if self._day is not None:
                for line in self._lines.values():
                    line.offered = line.answered = line.abandoned = 0
                    del line.waits[:]
                    line.alarmed = False
                self._flows_today.clear()
            self._day = day

    def _hotline_of(self, rec: EventRecord) -> str | None:
        queue = rec.text("queue")
        if rec.hotline:
            if queue:  # learn which hotline a queue serves, for events that name only the queue
                self._queue_hotline[queue] = rec.hotline
            return rec.hotline
        return self._call_hotline.get(rec.call_id or "") or self._queue_hotline.get(queue or "")

    def _alarm(self, rec: EventRecord, hotline: str | None, text: str) -> None:
        label = ALARM_LABELS.get(rec.type, rec.type)
        self.alarms.appendleft(
            {
                "ts": rec.ts,
                "at": iso(rec.ts, self.tz),
                "type": rec.type,
                "hotline": hotline,
                "label": label,
                "text": text,
            }
        )

    # --- feeding -------------------------------------------------------------------------------------------

    def set_agents_free(self, hotline: str, free: int) -> None:
        """A count of free agents from the daemon's own queue view (wins over member events)."""
        line = self._line(hotline)
        if line.agents_free_reported != free:
            line.agents_free_reported = free
            self.version += 1

    def feed(self, event: DomainEvent | EventRecord) -> list[DomainEvent]:
        """Apply one event; return the alarm events this raised (to publish and record)."""
        rec = EventRecord.of(event)
        self._roll_day(rec.ts)
        self.version += 1
        hotline = self._hotline_of(rec)
        raised: list[DomainEvent] = []
        for change, offer in self._offers.feed(rec):
            raised += self._count(change, offer, rec.ts)
        family, dot, _ = rec.type.partition(".")
        handle = self._HANDLERS.get(rec.type) or (self._HANDLERS.get(family + ".*") if dot else None)
        if handle is not None:
            handle(self, rec, hotline)
        free = rec.number("agents_free") if "agents_free" in rec.data else None
        if free is not None and hotline:  # a count given by the source itself
            self._line(hotline).agents_free_reported = int(free)
        if rec.type in ALARM_LABELS and rec.type != "kpi.answer_rate_low":
            self._alarm(rec, hotline, _describe(rec, hotline))
        for alarm in raised:
            self._alarm(EventRecord.of(alarm), alarm.hotline, _describe(EventRecord.of(alarm), alarm.hotline))
        return raised

    # --- one handler per event type (``family.*`` for a whole family): (board, event, its hotline) -----------

    def _on_offered(self, rec: EventRecord, hotline: str | None) -> None:
        if rec.call_id and hotline:
            self._call_hotline[rec.call_id] = hotline  # the latest presentation (after a transfer: the receiver)

    def _on_queued(self, rec: EventRecord, hotline: str | None) -> None:
        if rec.call_id and hotline:
            self._line(hotline).waiting.setdefault(rec.call_id, rec.ts)

    def _on_left_queue(self, rec: EventRecord, hotline: str | None) -> None:
        if rec.call_id:  # out of the queue (an abandon may move on: overflow, re-queue)
            self._stop_waiting(rec.call_id)

    def _on_answered(self, rec: EventRecord, hotline: str | None) -> None:
        if rec.call_id and hotline:
            line = self._line(hotline)
            line.waiting.pop(rec.call_id, None)
            agent = rec.text("agent")
            if agent and agent in line.members:
                line.members[agent] = False

    def _on_ended(self, rec: EventRecord, hotline: str | None) -> None:
        if not rec.call_id:
            return
        self._stop_waiting(rec.call_id)
        self._call_hotline.pop(rec.call_id, None)
        # a transfer still shown as in progress is over when its call is (no final event may come)
        for xfer in [x for x, f in self._active.items() if f["call_id"] == rec.call_id]:
            del self._active[xfer]

    def _on_pbx_restarted(self, rec: EventRecord, hotline: str | None) -> None:
        # every call on the PBX is gone: nobody waits any more, no transfer is in progress
        for line in self._lines.values():
            line.waiting.clear()
        self._active.clear()
        self._call_hotline.clear()

    def _on_member(self, rec: EventRecord, hotline: str | None) -> None:
        agent = rec.text("agent") or rec.text("member") or rec.text("interface")
        if not hotline or not agent:
            return
        if rec.text("change") in ("removed", "remove") or rec.data.get("removed") is True:
            self._line(hotline).members.pop(agent, None)
        else:
            self._line(hotline).members[agent] = _is_free(rec.data)

    def _on_overflow_started(self, rec: EventRecord, hotline: str | None) -> None:
        if hotline:
            self._line(hotline).overflow_since = rec.ts

    def _on_overflow_ended(self, rec: EventRecord, hotline: str | None) -> None:
        if not hotline:
            return
        since = self._line(hotline).overflow_since
        if since is not None:
            total = self.overflow_seconds_total.get(hotline, 0.0)
            self.overflow_seconds_total[hotline] = total + max(0.0, rec.ts - since)
        self._line(hotline).overflow_since = None

    def _on_nuisance(self, rec: EventRecord, hotline: str | None) -> None:
        if hotline:
            self.nuisance_total[hotline] += 1

    def _stop_waiting(self, call_id: str) -> None:
        for line in self._lines.values():
            line.waiting.pop(call_id, None)

    def _count(self, change: Change, offer: Offer, ts: float) -> list[DomainEvent]:
        """Count a presentation's offer or outcome: process lifetime always, today's only if offered today."""
        hotline = offer.hotline
        totals = {"offered": self.offered_total, "answered": self.answered_total, "abandoned": self.abandoned_total}
        totals[change][hotline] += 1
        if self._day_of(offer.offered_ts) != self._day:
            return []  # offered on an earlier day: that day's numbers, not today's
        line = self._line(hotline)
        if change == "offered":
            line.offered += 1
            return []
        if change == "answered":
            line.answered += 1
        else:
            line.abandoned += 1
        if offer.wait_s is not None:
            line.waits.append(offer.wait_s)
        return self._check_rate(hotline, ts)

    def _on_transfer(self, rec: EventRecord, hotline: str | None) -> None:
        xfer = rec.text("transfer_id")
        if not xfer:
            return
        flow = self._active.get(xfer)
        src = rec.text("from_hotline") or (flow or {}).get("from") or hotline or ""
        dst = rec.text("to_hotline") or (flow or {}).get("to") or ""
        outcome = rec.type.removeprefix("transfer.")
        if rec.type == "transfer.requested":
            self._active[xfer] = {
                "transfer_id": xfer, "call_id": rec.call_id, "from": src, "to": dst, "state": "requested",
                "since": rec.ts, "caller_num": rec.text("caller_num"),
            }  # fmt: skip
            self._flows_today[(src, dst)] += 1
            self.transfers_total[(src, dst, "requested")] += 1
        elif rec.type in ("transfer.number_verified", "transfer.number_mismatch"):
            verdict = "verified" if rec.type.endswith("verified") else "mismatch"
            self.number_checks_total[(src, dst, verdict)] += 1
        elif outcome in FINAL_TRANSFER_OUTCOMES:
            self._active.pop(xfer, None)
            self.transfers_total[(src, dst, outcome)] += 1
        elif flow is not None and outcome in ("ringing", "answered", "backup_line"):
            flow["state"] = outcome

    def _check_rate(self, hotline: str, ts: float) -> list[DomainEvent]:
        line = self._line(hotline)
        rate = answer_rate(line.answered, line.abandoned)
        target = self.target(hotline)
        if rate is None or line.answered + line.abandoned < self.min_offered:
            return []
        if rate >= target:
            line.alarmed = False
            return []
        if line.alarmed:
            return []
        line.alarmed = True
        return [AnswerRateLow(ts=ts, hotline=hotline, rate=rate, target=target, offered=line.offered,
                              answered=line.answered)]  # fmt: skip

    _HANDLERS: ClassVar[Mapping[str, Callable[[LiveBoard, EventRecord, str | None], None]]] = {
        "call.offered": _on_offered,
        "queue.joined": _on_queued,
        "call.queued": _on_queued,
        "queue.left": _on_left_queue,
        "queue.abandoned": _on_left_queue,
        "call.answered": _on_answered,
        "call.ended": _on_ended,
        "pbx.restarted": _on_pbx_restarted,
        "queue.member_changed": _on_member,
        "queue.overflow_started": _on_overflow_started,
        "queue.overflow_ended": _on_overflow_ended,
        "nuisance.flagged": _on_nuisance,
        "transfer.*": _on_transfer,
    }

    # --- reading -------------------------------------------------------------------------------------------

    def hotline_names(self) -> list[str]:
        """Configured hotlines first, in their order; then the others as they were seen."""
        return list(self._lines)

    def snapshot(self, now: float) -> dict[str, Any]:
        """JSON-safe state for the wallboard at time ``now``."""
        stale = self._day is not None and self._day_of(now) > self._day  # no event yet today
        tiles = []
        for h in self.hotline_names():
            line = self._lines[h]
            offered, answered, abandoned = (0, 0, 0) if stale else (line.offered, line.answered, line.abandoned)
            rate = answer_rate(answered, abandoned)
            waits: Sequence[float] = () if stale else line.waits
            free = line.agents_free_reported
            if free is None:
                free = sum(1 for f in line.members.values() if f)
            tiles.append({
                "hotline": h,
                "name": self.names.get(h, h),
                "waiting": len(line.waiting),
                "longest_wait_s": round(max((now - s for s in line.waiting.values()), default=0.0), 1),
                "agents_free": free,
                "agents_total": len(line.members),
                "offered_today": offered,
                "answered_today": answered,
                "abandoned_today": abandoned,
                "answer_rate_today": rate,
                "target": self.target(h),
                "below_target": rate is not None and rate < self.target(h),
                "wait_avg_s": round(sum(waits) / len(waits), 1) if waits else None,
                "wait_p90_s": percentile(waits, 0.9),
                "overflow_active": line.overflow_since is not None,
            })  # fmt: skip
        active = Counter((f["from"], f["to"]) for f in self._active.values())
        pairs = set(active) | (set() if stale else set(self._flows_today))
        flows = [
            {"from": a, "to": b, "active": active.get((a, b), 0), "today": 0 if stale else self._flows_today[(a, b)]}
            for a, b in sorted(pairs)
        ]
        return {
            "ts": now,
            "at": iso(now, self.tz),
            "version": self.version,
            "hotlines": tiles,
            "flows": flows,
            "active_transfers": sorted(self._active.values(), key=lambda f: f["since"]),
            "alarms": list(self.alarms),
        }


def _describe(rec: EventRecord, hotline: str | None) -> str:
    where = hotline or ""
    if rec.type == "kpi.answer_rate_low":
        rate, target = rec.number("rate") or 0.0, rec.number("target") or 0.0
        return f"{where} 人工接通率 {rate:.0%} < {target:.0%} · answer rate {rate:.0%} under {target:.0%}"
    if rec.type.startswith("transfer."):
        pair = f"{rec.text('from_hotline') or where} → {rec.text('to_hotline') or '?'}"
        reason = rec.text("reason") or rec.text("line") or ""
        return f"{pair} {reason}".strip()
    if rec.type == "nuisance.flagged":
        return f"{where} {rec.text('caller_num') or ''} {rec.text('reason') or ''}".strip()
    return " ".join(p for p in (where, rec.text("reason") or rec.text("queue") or "") if p)
