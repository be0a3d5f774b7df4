"""``callbridge check [PATH]``: validate a dialplan file or directory.

Exit 0 = valid (warnings may be printed), 1 = invalid, 2 = cannot read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callbridge.dialplan.loader import check_dialplan
from callbridge.errors import UnreadableConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="dialplans", help="dialplan file or directory (default: dialplans)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only, no summary")


def main(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        plan, problems = check_dialplan(path)
    except UnreadableConfigError as exc:
        print(f"callbridge check: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if plan is None:
        if not args.quiet:
            print(f"{path}: invalid ({errors} error(s), {warnings} warning(s))", file=sys.stderr)
        return 1
    if not args.quiet:
        print(
            f"{path}: OK — {len(plan.hotlines)} hotlines, {len(plan.trunks)} trunks, {len(plan.queues)} queues,"
            f" {len(plan.rules)} rules, {len(plan.modes)} modes (start: {plan.start_mode}), {warnings} warning(s)"
        )
    return 0
