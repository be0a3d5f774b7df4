"""``callbridge demo``: a narrated day in a city's hotline network, checked as it plays.

The real daemon runs against the built-in PBX simulator (executing the Asterisk configuration rendered
from ``dialplans/``) and an embedded MQTT broker (or ``--broker mqtt://host:port``). Exit 0 when every
scene happened, 1 when one did not, 2 when the demo could not start.

The records of the day stay at the path printed at start (``--db PATH``, else
``$XDG_STATE_HOME/callbridge/demo-records.sqlite3``, replaced by the next demo), with the daemon's log beside
them: ``callbridge records --db PATH`` and ``callbridge report --db PATH`` read them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console

from callbridge.demo.runner import DemoOptions, run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true", help="no pauses, short timers: runs in seconds (CI)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave daemon, simulator and broker up after the script until Ctrl-C")
    parser.add_argument("--broker", default=None, metavar="URL",
                        help="use an existing broker (mqtt://host:port, MQTT 5) instead of the embedded one")
    parser.add_argument("--json-summary", default=None, metavar="PATH", type=Path,
                        help="write the summary (scenes, checks, counts) as JSON")
    parser.add_argument("--dialplans", default=None, metavar="DIR", type=Path,
                        help="dialplan directory to copy (default: ./dialplans)")
    parser.add_argument("--no-web", action="store_true",
                        help="do not serve the wallboard and records API (records are still kept)")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                        help="daemon log level (default warning); the log goes beside the records")
    parser.add_argument("--db", default=None, metavar="PATH", type=Path,
                        help="keep the day's records in this SQLite file (added to; default: "
                             "$XDG_STATE_HOME/callbridge/demo-records.sqlite3, replaced at each run)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the PBX side too: channel and variable names, ids; the daemon's log on stderr")


def main(args: argparse.Namespace) -> int:
    options = DemoOptions(fast=args.fast, keep_running=args.keep_running, broker=args.broker,
                          json_summary=args.json_summary, dialplans=args.dialplans,
                          log_level=args.log_level, web=not args.no_web, verbose=args.verbose,
                          db=args.db)  # fmt: skip
    # to a pipe or a file: sentences stay on one line (a reader's pager or editor wraps them, not rich at 80)
    console = Console() if sys.stdout.isatty() else Console(soft_wrap=True)
    try:
        return asyncio.run(run_demo(options, console))
    except KeyboardInterrupt:
        return 130
