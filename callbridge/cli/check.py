"""``callbridge check [PATH] [--settings FILE]``: validate dialplan files (and optionally the settings).

Exit 0 = valid (warnings may be printed), 1 = invalid, 2 = cannot read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from callbridge.cli.common import report_local_error
from callbridge.dialplan.loader import check_dialplan
from callbridge.errors import ConfigError, Problem, UnreadableConfigError
from callbridge.settings import load_settings

PROG = "callbridge check"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="dialplans", help="dialplan file or directory (default: dialplans)")
    parser.add_argument("--settings", metavar="FILE", help="also validate this service settings file")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="json: one problem object a line")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only, no summary")


def _print(problems: list[Problem], fmt: str) -> None:
    for problem in problems:
        print(json.dumps(dataclasses.asdict(problem), ensure_ascii=False) if fmt == "json" else problem)


def _check_settings(path: str, fmt: str) -> int:
    try:
        load_settings(Path(path))
    except ConfigError as exc:
        # Not report_local_error: check prints problems on stdout in the chosen format (text or JSON
        # lines), like the dialplan's, so editors and CI can parse one stream.
        _print(list(exc.problems), fmt)
        return 1
    except UnreadableConfigError as exc:
        return report_local_error(PROG, exc)
    return 0


def main(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        plan, problems = check_dialplan(path)
    except UnreadableConfigError as exc:
        return report_local_error(PROG, exc)
    _print(problems, args.format)
    settings_code = _check_settings(args.settings, args.format) if args.settings else 0
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if plan is None:
        if not args.quiet:
            print(f"{path}: invalid ({errors} error(s), {warnings} warning(s))", file=sys.stderr)
        return max(1, settings_code)
    if not args.quiet and args.format == "text":
        print(
            f"{path}: OK — {len(plan.hotlines)} hotlines, {len(plan.trunks)} trunks, {len(plan.queues)} queues,"
            f" {len(plan.rules)} rules, {len(plan.modes)} modes (start: {plan.start_mode}), {warnings} warning(s)"
        )
    return settings_code
