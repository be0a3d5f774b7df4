"""``callbridge demo``: a narrated day in a city's hotline network, checked as it plays.

The real daemon runs against the built-in PBX simulator (executing the Asterisk configuration rendered
from ``dialplans/``) and an embedded MQTT broker (or ``--broker mqtt://host:port``). Exit 0 when every
scene happened, 1 when one did not, 2 when the demo could not start.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


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
                        help="daemon log level on stderr (default warning)")


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from callbridge.demo.runner import DemoOptions, run_demo
    options = DemoOptions(fast=args.fast, keep_running=args.keep_running, broker=args.broker,
                          json_summary=args.json_summary, dialplans=args.dialplans,
                          log_level=args.log_level, web=not args.no_web)  # fmt: skip
    console = Console()
    try:
        return asyncio.run(run_demo(options, console))
    except KeyboardInterrupt:
        return 130
