"""The demo's end-of-day numbers from the daemon's records store (not from the MQTT subscriber).

:func:`records_summary` turns the :class:`~callbridge.store.kpi.KpiReport` that
:func:`callbridge.store.kpi.compute` made from the store's rows into JSON-safe numbers (what
``--json-summary`` writes); :func:`records_tables` shows them. Nothing here counts events itself: a KPI
that disagrees with the subscriber's counts then points at the records, which is what the demo is for.

Every answer rate, the per-hotline ones and the day's total, is :func:`callbridge.store.kpi.answer_rate`
(answered / (answered + abandoned), over finished offers), so the "all" row reads like the others.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from callbridge.store.kpi import HotlineKpi, KpiReport, answer_rate
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES

#: How a transfer outcome that is not final is labelled: the call was still up when the table was made.
IN_PROGRESS = "in progress 进行中"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _hotline(k: HotlineKpi) -> dict[str, Any]:
    return {
        "offered": k.offered,
        "answered": k.answered,
        "abandoned": k.abandoned,
        "in_progress": k.in_progress,
        "answer_rate": _rounded(k.answer_rate),
        "target": k.target,
        "transfers_out": k.transfers_out,
        "transfers_in": k.transfers_in,
        "transfer_success": _rounded(k.transfer_success),
        "number_verified": _rounded(k.number_verified),
        "backup_line_uses": k.backup_line_uses,
        "overflow_minutes": round(k.overflow_minutes, 2),
        "nuisance_callers": k.nuisance_callers,
    }


def records_summary(report: KpiReport) -> dict[str, Any]:
    """Per hotline KPIs, transfers by pair, and the day's totals: sums of the per-hotline counts, and the
    answer rate of those sums by the same definition as each hotline's."""
    offered = sum(k.offered for k in report.hotlines.values())
    answered = sum(k.answered for k in report.hotlines.values())
    abandoned = sum(k.abandoned for k in report.hotlines.values())
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "in_progress": offered - answered - abandoned,
        "answer_rate": _rounded(answer_rate(answered, abandoned)),
        "hotlines": {h: _hotline(k) for h, k in report.hotlines.items()},
        "transfers_by_pair": [
            {"from": a, "to": b, "outcomes": dict(outcomes)} for (a, b), outcomes in report.transfers_by_pair.items()
        ],
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def outcome_label(outcome: str, n: int) -> str:
    """``completed 2``; an outcome that is not final says so: ``answered 1 (in progress 进行中)``."""
    return f"{outcome} {n}" if outcome in FINAL_TRANSFER_OUTCOMES else f"{outcome} {n} ({IN_PROGRESS})"


_RATE_CAPTION = ("answer rate 接通率 = answered / (answered + abandoned);\n"
                 "offers in progress (still waiting, ringing or on the line) are not counted")


def records_tables(records: dict[str, Any]) -> tuple[Table, Table]:
    """(per hotline KPIs, transfers by pair) as rich tables, Chinese labels with English beside them."""
    per_hotline = Table(title="records KPIs 记录指标 (records store)", caption=_RATE_CAPTION)
    # headings on several lines keep the table within an 80-column terminal; transfers are in the table
    # by pair, the number-verified and transfer-success rates in the JSON summary
    for column in ("hotline\n热线", "offered\n呼入", "answered\n接通", "abandoned\n放弃", "in\nprogress\n进行中",
                   "answer\nrate\n接通率", "target\n目标"):  # fmt: skip
        per_hotline.add_column(column, justify="left" if column.startswith("hotline") else "right")
    for hotline, k in records["hotlines"].items():
        per_hotline.add_row(hotline, str(k["offered"]), str(k["answered"]), str(k["abandoned"]),
                            str(k["in_progress"]), _pct(k["answer_rate"]), _pct(k["target"]))  # fmt: skip
    per_hotline.add_row("all 合计", str(records["offered"]), str(records["answered"]), str(records["abandoned"]),
                        str(records["in_progress"]), _pct(records["answer_rate"]), "", style="bold")  # fmt: skip
    pairs = Table(title="transfers by pair 热线间转接")
    pairs.add_column("from → to 转出 → 转入")
    pairs.add_column("outcomes 结果", justify="right")
    for pair in records["transfers_by_pair"]:
        outcomes = ", ".join(outcome_label(outcome, n) for outcome, n in pair["outcomes"].items())
        pairs.add_row(f"{pair['from']} → {pair['to']}", outcomes)
    return per_hotline, pairs
