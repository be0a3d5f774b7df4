"""KPIs per hotline and period — pure functions over record rows.

Definitions (also in docs/records.md):

* **offered** — presentations of a citizen's call to the hotline offered in the period: the call reached
  it (``call.offered``), or a transfer into it rang there; a three-way leg callbridge called in is its
  transfer's part, not a citizen's call. The presentations (the ``calls`` of :class:`PeriodRecords`) are
  made by :class:`callbridge.store.offers.OfferBook` — the live board's book, the one definition.
* **answered** — of those, answered by a person of that hotline (``call.answered``; for a transfer in,
  ``transfer.answered``).
* **abandoned** — over without an answer: the call ended unanswered, or a transfer in failed after it
  rang. Leaving a queue (``queue.abandoned``) is not an abandon by itself: overflow moves the caller on to
  the remote seats, where the call is answered or lost later.
* **answer rate** (人工接通率) — answered / (answered + abandoned): over *finished* offers only, so a
  call still waiting or ringing neither helps nor hurts the rate until it is answered or lost (otherwise
  a hotline would look under target on its first waiting call); ``None`` before any offer finished.
  Offers still in progress are :attr:`HotlineKpi.in_progress`. The live board uses the same definition.
* **wait** — seconds from offer to answer (or to the end); average and 90th percentile (nearest rank)
  over the calls whose wait is known.
* **transfers** — by (from, to) pair and outcome; *verified %* = number-carrying checks that matched /
  checks made; *success %* = completed / transfers with a final outcome.
* **overflow minutes** — time overflow was active, clipped to the period.
* **nuisance callers** — distinct numbers flagged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from callbridge.store.events import AnswerRateLow
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES

DEFAULT_ANSWER_RATE_TARGET = 0.8


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: str
    hotline: str
    offered_ts: float
    answered_ts: float | None = None
    ended_ts: float | None = None
    wait_s: float | None = None
    outcome: str | None = None  # answered | abandoned | None (in progress)
    caller_num: str | None = None


@dataclass(frozen=True, slots=True)
class TransferRow:
    transfer_id: str
    from_hotline: str
    to_hotline: str
    outcome: str
    requested_ts: float
    number_verified: bool | None = None
    backup_line: bool = False


@dataclass(frozen=True, slots=True)
class OverflowRow:
    hotline: str
    started_ts: float
    ended_ts: float | None = None


@dataclass(frozen=True, slots=True)
class NuisanceRow:
    hotline: str
    caller_num: str
    ts: float


@dataclass(frozen=True, slots=True)
class PeriodRecords:
    """Everything the KPIs need for one period (what :meth:`RecordStore.period_records` returns)."""

    start: float
    end: float
    calls: tuple[CallRow, ...] = ()
    transfers: tuple[TransferRow, ...] = ()
    overflows: tuple[OverflowRow, ...] = ()
    nuisance: tuple[NuisanceRow, ...] = ()


@dataclass(frozen=True, slots=True)
class HotlineKpi:
    hotline: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answer_rate: float | None = None
    target: float = DEFAULT_ANSWER_RATE_TARGET
    wait_avg_s: float | None = None
    wait_p90_s: float | None = None
    transfers_out: int = 0
    transfers_in: int = 0
    transfer_success: float | None = None  # of outgoing transfers with a final outcome
    number_verified: float | None = None  # of outgoing transfers whose number was checked
    backup_line_uses: int = 0
    overflow_minutes: float = 0.0
    nuisance_callers: int = 0

    @property
    def finished(self) -> int:
        """Offers with an outcome (answered or abandoned): the answer rate's denominator."""
        return self.answered + self.abandoned

    @property
    def in_progress(self) -> int:
        """Offers still waiting or ringing (no outcome yet): not part of the answer rate."""
        return self.offered - self.finished

    @property
    def below_target(self) -> bool:
        return self.answer_rate is not None and self.answer_rate < self.target


@dataclass(frozen=True, slots=True)
class KpiReport:
    start: float
    end: float
    hotlines: dict[str, HotlineKpi]
    #: (from, to) → outcome → count
    transfers_by_pair: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def answer_rate(answered: int, abandoned: int) -> float | None:
    """人工接通率: answered / (answered + abandoned) — finished offers only; ``None`` before the first."""
    return ratio(answered, answered + abandoned)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _overlap_minutes(row: OverflowRow, start: float, end: float) -> float:
    stop = row.ended_ts if row.ended_ts is not None else end
    return max(0.0, min(stop, end) - max(row.started_ts, start)) / 60.0


def compute(
    records: PeriodRecords,
    targets: Mapping[str, float] | None = None,
    default_target: float = DEFAULT_ANSWER_RATE_TARGET,
) -> KpiReport:
    """Every KPI of every hotline seen in ``records``; ``targets`` maps hotline → answer-rate target."""
    targets = targets or {}
    seen = (
        {c.hotline for c in records.calls}
        | {t.from_hotline for t in records.transfers}
        | {t.to_hotline for t in records.transfers}
        | {o.hotline for o in records.overflows}
        | {n.hotline for n in records.nuisance}
    )
    hotlines = sorted(seen - {""})
    pairs: dict[tuple[str, str], Counter[str]] = {}
    for t in records.transfers:
        pairs.setdefault((t.from_hotline, t.to_hotline), Counter())[t.outcome] += 1
    out: dict[str, HotlineKpi] = {}
    for h in hotlines:
        calls = [c for c in records.calls if c.hotline == h]
        answered = sum(1 for c in calls if c.outcome == "answered")
        abandoned = sum(1 for c in calls if c.outcome == "abandoned")
        waits = [c.wait_s for c in calls if c.wait_s is not None and c.outcome is not None]
        outgoing = [t for t in records.transfers if t.from_hotline == h]
        final = [t for t in outgoing if t.outcome in FINAL_TRANSFER_OUTCOMES]
        checked = [t for t in outgoing if t.number_verified is not None]
        out[h] = HotlineKpi(
            hotline=h,
            offered=len(calls),
            answered=answered,
            abandoned=abandoned,
            answer_rate=answer_rate(answered, abandoned),
            target=targets.get(h, default_target),
            wait_avg_s=sum(waits) / len(waits) if waits else None,
            wait_p90_s=percentile(waits, 0.9),
            transfers_out=len(outgoing),
            transfers_in=sum(1 for t in records.transfers if t.to_hotline == h),
            transfer_success=ratio(sum(1 for t in final if t.outcome == "completed"), len(final)),
            number_verified=ratio(sum(1 for t in checked if t.number_verified), len(checked)),
            backup_line_uses=sum(1 for t in outgoing if t.backup_line),
            overflow_minutes=sum(
                _overlap_minutes(o, records.start, records.end) for o in records.overflows if o.hotline == h
            ),
            nuisance_callers=len({n.caller_num for n in records.nuisance if n.hotline == h}),
        )
    return KpiReport(
        start=records.start,
        end=records.end,
        hotlines=out,
        transfers_by_pair={pair: dict(sorted(c.items())) for pair, c in sorted(pairs.items())},
    )


def answer_rate_alarms(
    report: KpiReport, *, now: float, period: str = "today", min_offered: int = 5
) -> list[AnswerRateLow]:
    """One :class:`AnswerRateLow` per hotline under its target (with at least ``min_offered`` *finished*
    offers — the rate's denominator — so a single early missed call does not page anyone)."""
    return [
        AnswerRateLow(
            ts=now,
            hotline=k.hotline,
            rate=k.answer_rate,
            target=k.target,
            offered=k.offered,
            answered=k.answered,
            period=period,
        )
        for k in report.hotlines.values()
        if k.answer_rate is not None and k.finished >= min_offered and k.answer_rate < k.target
    ]
