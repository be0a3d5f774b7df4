"""The periodic KPI brief for the city: markdown (to read) or CSV (to merge into a monthly sheet).

The answer rate is over finished offers (answered / (answered + abandoned), see :mod:`callbridge.store.kpi`);
offers still waiting or ringing are shown in their own column, ``in_progress``.
"""

from __future__ import annotations

import csv
import io

from callbridge.store.kpi import KpiReport
from callbridge.store.periods import Period, iso

#: CSV columns, one row per hotline. New columns go last: monthly sheets may read them by position.
KPI_COLUMNS = (
    "period", "from", "to", "hotline", "offered", "answered", "answer_rate", "target", "below_target", "abandoned",
    "wait_avg_s", "wait_p90_s", "transfers_out", "transfers_in", "transfer_success", "number_verified",
    "backup_line_uses", "overflow_minutes", "nuisance_callers", "in_progress",
)  # fmt: skip


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def render_csv(report: KpiReport, period: Period) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(KPI_COLUMNS)
    for k in report.hotlines.values():
        out.writerow([
            period.label, iso(period.start), iso(period.end), k.hotline, k.offered, k.answered,
            _num(k.answer_rate), _num(k.target), int(k.below_target), k.abandoned, _num(k.wait_avg_s),
            _num(k.wait_p90_s), k.transfers_out, k.transfers_in, _num(k.transfer_success), _num(k.number_verified),
            k.backup_line_uses, _num(round(k.overflow_minutes, 2)), k.nuisance_callers, k.in_progress,
        ])  # fmt: skip
    return buf.getvalue()


def render_markdown(report: KpiReport, period: Period) -> str:
    lines = [
        f"# 热线联动报告 Hotline KPI report — {period.label}",
        "",
        f"{iso(period.start)} – {iso(period.end)}",
        "",
        "## 各热线 Per hotline",
        "",
        "| 热线 Hotline | 呼入 Offered | 人工接通 Answered | 人工接通率 Answer rate | 目标 Target | 放弃 Abandoned "
        "| 未结束 In progress | 平均等待 Avg wait (s) | P90 等待 P90 wait (s) | 转出 Transfers out "
        "| 转接成功率 Transfer success | 号码携带核验 Number verified | 溢出分钟 Overflow min | 骚扰号码 Nuisance |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in report.hotlines.values():
        flag = " ⚠" if k.below_target else ""
        lines.append(
            f"| {k.hotline} | {k.offered} | {k.answered} | {_pct(k.answer_rate)}{flag} | {k.target:.0%} "
            f"| {k.abandoned} | {k.in_progress} | {_secs(k.wait_avg_s)} | {_secs(k.wait_p90_s)} | {k.transfers_out} "
            f"| {_pct(k.transfer_success)} | {_pct(k.number_verified)} | {k.overflow_minutes:.1f} "
            f"| {k.nuisance_callers} |"
        )
    if not report.hotlines:
        lines.append("| – | 0 | 0 | – | – | 0 | 0 | – | – | 0 | – | – | 0.0 | 0 |")
    lines += [
        "",
        "人工接通率 = 人工接通 / (人工接通 + 放弃)，未结束的呼入不计入。"
        " Answer rate = answered / (answered + abandoned); offers still in progress are not counted.",
    ]
    lines += ["", "## 转接 Transfers by pair and outcome", ""]
    if report.transfers_by_pair:
        lines += ["| 从 From | 到 To | 结果 Outcome | 次数 Count |", "|---|---|---|---:|"]
        for (src, dst), outcomes in report.transfers_by_pair.items():
            lines += [f"| {src} | {dst} | {outcome} | {n} |" for outcome, n in outcomes.items()]
    else:
        lines.append("无转接 No transfers in this period.")
    below = [k.hotline for k in report.hotlines.values() if k.below_target]
    lines += ["", "## 告警 Alarms", ""]
    lines.append(f"人工接通率低于目标 Answer rate under target: {', '.join(below)}" if below else "无 None.")
    return "\n".join(lines) + "\n"
