"""``callbridge run [--config config/callbridge.yaml]``: the daemon beside a PBX.

Exit 0 after SIGTERM/SIGINT (graceful: no call is touched), 1 when the settings or the dialplan are
invalid at start-up (every located problem is printed), 2 when a file cannot be read, 3 when a part of
the daemon could not start or failed while running (``callbridge run: web: cannot listen on
127.0.0.1:8080: Address already in use``; the retained MQTT status then says ``offline``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from callbridge.app import App, tune_gc, use_uvloop
from callbridge.cli.common import add_config_argument, report_local_error, settings_from_args
from callbridge.errors import ConfigError, PartFailedError, UnreadableConfigError
from callbridge.hugepages import use_huge_arenas
from callbridge.lifecycle import run_daemon
from callbridge.log import configure_logging, get_logger

PROG = "callbridge run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--dialplan", default=None, help="dialplan file or directory (overrides the settings)")
    parser.add_argument("--no-bus", action="store_true", help="do not connect to MQTT (events are only logged)")


def main(args: argparse.Namespace) -> int:
    # First: arenas given out before it keep their small pages (callbridge/hugepages.py).
    huge_arenas = use_huge_arenas()
    try:
        settings = settings_from_args(args)
    except (UnreadableConfigError, ConfigError) as exc:
        return report_local_error(PROG, exc)
    configure_logging(settings.log.format, settings.log.level)
    uvloop = use_uvloop()
    try:
        app = App(settings, dialplan_path=Path(args.dialplan) if args.dialplan else None, enable_bus=not args.no_bus,
                  enable_store=True, enable_web=settings.web.enabled)
    except (UnreadableConfigError, ConfigError) as exc:
        return report_local_error(PROG, exc)
    get_logger("callbridge.run").info("callbridge.loop", uvloop=uvloop, huge_arenas=huge_arenas)
    tune_gc()
    code = 0
    try:
        clean = run_daemon(app.run())
    except ConfigError as exc:  # e.g. no AMI secret in the environment
        return report_local_error(PROG, exc)
    except PartFailedError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        clean, code = True, 3
    if not clean:  # a thread or task that would not end (logged): exit without joining it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
