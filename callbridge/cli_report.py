"""``callbridge report --period today|yesterday|YYYY-MM|YYYY-MM-DD|FROM..TO``: KPIs per hotline.

Markdown for the periodic brief, CSV to merge into the monthly sheet. Answer-rate targets come from the
dialplan (``hotlines.<n>.answer_rate_target``) when ``--dialplan`` is given, else 80 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from callbridge.cli import report_local_error
from callbridge.cli_records import add_store_arguments, open_store_from_args
from callbridge.errors import LocalError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", default="today", help="today | yesterday | YYYY-MM | YYYY-MM-DD | FROM..TO")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--dialplan", default=None, help="dialplan file or directory (per-hotline targets)")
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")
    add_store_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from callbridge.store.kpi import compute
    from callbridge.store.periods import parse_period
    from callbridge.store.report import render_csv, render_markdown

    try:
        period = parse_period(args.period, now=time.time())
        targets: dict[str, float] = {}
        if args.dialplan:
            from callbridge.dialplan.loader import load_dialplan

            plan = load_dialplan(Path(args.dialplan))
            targets = {h.number: h.answer_rate_target for h in plan.model.hotlines.values()}
        store = open_store_from_args(args)
    except LocalError as exc:
        return report_local_error("callbridge report", exc)
    try:
        report = compute(store.period_records(period.start, period.end), targets)
    finally:
        store.close()
    text = render_csv(report, period) if args.format == "csv" else render_markdown(report, period)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
