"""``callbridge report --period today|yesterday|YYYY-MM|YYYY-MM-DD|FROM..TO``: KPIs per hotline.

Markdown for the periodic brief, CSV to merge into the monthly sheet. Answer-rate targets come from the
dialplan (``hotlines.<n>.answer_rate_target``): ``--dialplan``, else the settings' ``dialplan.path`` (the
settings file of ``--config`` or ``config/callbridge.yaml``; without one, ``dialplans`` in the working
directory). Only when no dialplan is found does every hotline get 80 %, and the report says so on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from callbridge.centres.report import centre_handovers, render_centres, with_received
from callbridge.cli.common import report_local_error, settings_from_args
from callbridge.cli.records import add_store_arguments, open_store_from_args
from callbridge.dialplan.loader import load_dialplan
from callbridge.errors import LocalError
from callbridge.store.feedback import open_loops, render_open_loops
from callbridge.store.kpi import compute
from callbridge.store.periods import parse_period
from callbridge.store.report import render_csv, render_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", default="today", help="today | yesterday | YYYY-MM | YYYY-MM-DD | FROM..TO")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--dialplan", default=None, help="dialplan file or directory (per-hotline targets)")
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")
    parser.add_argument("--open-loops", type=float, default=None, metavar="HOURS",
                        help="instead of KPIs: hand-overs that reached the destination more than HOURS ago "
                             "with no resolved/returned feedback, per hotline pair")  # fmt: skip
    parser.add_argument("--centres", action="store_true",
                        help="instead of KPIs: the hand-overs between two centres in the period, with how the "
                             "receiving centre bound them, the transfer's outcome and the feedback")  # fmt: skip
    add_store_arguments(parser)


def dialplan_path(args: argparse.Namespace) -> Path:
    """``--dialplan``, else the one the daemon would run with (the settings' ``dialplan.path``)."""
    return Path(args.dialplan) if args.dialplan else settings_from_args(args).dialplan.path


def answer_rate_targets(args: argparse.Namespace) -> dict[str, float]:
    """Per-hotline targets of the dialplan; {} (80 % for all) when there is none to read, said on stderr."""
    path = dialplan_path(args)
    if not args.dialplan and not path.exists():
        print(f"callbridge report: no dialplan at {path}: answer-rate target 80 % for every hotline "
              "(give --dialplan PATH or --config SETTINGS)", file=sys.stderr)
        return {}
    plan = load_dialplan(path)
    return {h.number: h.answer_rate_target for h in plan.model.hotlines.values()}


def main(args: argparse.Namespace) -> int:
    if args.open_loops is not None:
        return open_loops_report(args)
    if args.centres:
        return centres_report(args)
    try:
        period = parse_period(args.period, now=time.time())
        targets = answer_rate_targets(args)
        store = open_store_from_args(args)
    except LocalError as exc:
        return report_local_error("callbridge report", exc)
    try:
        report = compute(store.period_records(period.start, period.end), targets)
        between = centre_handovers(store.backend, start=period.start, end=period.end)
    finally:
        store.close()
    report = replace(report, transfers_by_pair=with_received(report.transfers_by_pair, between))
    text = render_csv(report, period) if args.format == "csv" else render_markdown(report, period)
    if between and args.format != "csv":  # two centres: the pair's hand-overs with both outcomes, after the KPIs
        text += "\n" + render_centres(between, label=period.label).replace("# ", "## ", 1)
    return _write(args, text)


def open_loops_report(args: argparse.Namespace) -> int:
    """``--open-loops HOURS``: the case loops still open (see callbridge/store/feedback.py)."""
    if args.open_loops < 0:
        print("callbridge report: --open-loops needs a number of hours >= 0", file=sys.stderr)
        return 1
    try:
        store = open_store_from_args(args)
    except LocalError as exc:
        return report_local_error("callbridge report", exc)
    now = time.time()
    try:
        loops = open_loops(store.backend, now=now, older_than_s=args.open_loops * 3600)
    finally:
        store.close()
    return _write(args, render_open_loops(loops, now=now, hours=args.open_loops, fmt=args.format))


def centres_report(args: argparse.Namespace) -> int:
    """``--centres``: the pair's hand-overs with both outcomes (see callbridge/centres/report.py)."""
    try:
        period = parse_period(args.period, now=time.time())
        store = open_store_from_args(args)
    except LocalError as exc:
        return report_local_error("callbridge report", exc)
    try:
        rows = centre_handovers(store.backend, start=period.start, end=period.end)
    finally:
        store.close()
    return _write(args, render_centres(rows, label=period.label, fmt=args.format))


def _write(args: argparse.Namespace, text: str) -> int:
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
