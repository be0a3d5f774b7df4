"""``callbridge replay TRACE...``: replay recorded AMI streams through framing, decode and the tracker.

Prints one JSON object per derived event (``type``, ``ts``, ``call_id``, ``hotline``, then the event's
data fields); ``--state`` prints the tracker's final picture instead of / after the events.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import orjson
import structlog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="raw AMI text (*.rx.raw) or a JSON array")
    parser.add_argument("--state", action="store_true", help="print the final tracker state as JSON")
    parser.add_argument("--no-events", action="store_true", help="do not print the derived events")
    parser.add_argument("-v", "--verbose", action="store_true", help="log tracker decisions to stderr")


def main(args: argparse.Namespace) -> int:
    # Logs go to stderr so that stdout stays pure JSON lines.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if args.verbose else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    from callbridge.testing.replay import event_record, replay_bytes

    code = 0
    for name in args.traces:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            print(f"callbridge replay: cannot read {name}: {exc.strerror}", file=sys.stderr)
            code = 2
            continue
        try:
            derived, tracker = replay_bytes(data)
        except orjson.JSONDecodeError as exc:
            print(f"callbridge replay: {name} is not valid JSON: {exc}", file=sys.stderr)
            code = 2
            continue
        out = sys.stdout.buffer
        if not args.no_events:
            for ev in derived:
                out.write(orjson.dumps(event_record(ev)) + b"\n")
        if args.state:
            out.write(orjson.dumps({"trace": name, "state": tracker.snapshot()}, option=orjson.OPT_INDENT_2) + b"\n")
        out.flush()
    return code
