"""``callbridge replay TRACE...``: replay recorded AMI streams through framing, decode and the tracker.

Prints one JSON object per derived event (``type``, ``ts``, ``call_id``, ``hotline``, then the event's
data fields); ``--state`` prints the tracker's final picture instead of / after the events.

Times: each event's ``Timestamp`` header, else the recording's ``NAME.log`` beside ``NAME.rx.raw`` (its
relative times), else a logical clock of 10 ms per event (see :mod:`callbridge.testing.replay`).
``--dialplan DIR`` attributes calls to hotlines as the daemon does.

A trace that is no trace is refused with one line on stderr and an exit code of its own: 2 unreadable,
3 truncated last event, 4 not valid JSON, 5 JSON but not an array, 6 not an AMI stream, 7 not UTF-8,
8 the dialplan is invalid. With several traces the exit code is that of the first refused one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import orjson
import structlog

from callbridge.dialplan.loader import load_dialplan
from callbridge.engine.authz import hotline_of as plan_hotline_of
from callbridge.errors import ConfigError, UnreadableConfigError
from callbridge.testing.replay import TraceError, event_record, replay_bytes

BAD_DIALPLAN = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="raw AMI text (*.rx.raw) or a JSON array")
    parser.add_argument("--state", action="store_true", help="print the final tracker state as JSON")
    parser.add_argument("--no-events", action="store_true", help="do not print the derived events")
    parser.add_argument("--dialplan", metavar="DIR", type=Path, help="dialplan file or directory: attribute hotlines")
    parser.add_argument("--no-log-times", action="store_true",
                        help="ignore NAME.log beside the trace (Timestamp headers, else logical clock)")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log tracker decisions to stderr")


def _log_beside(trace: Path) -> str | None:
    log = trace.with_name(trace.name.removesuffix(".rx.raw") + ".log") if trace.name.endswith(".rx.raw") else None
    try:
        return log.read_text(encoding="utf-8", errors="replace") if log is not None and log.is_file() else None
    except OSError:
        return None


def main(args: argparse.Namespace) -> int:
    # Logs go to stderr so that stdout stays pure JSON lines.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if args.verbose else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    hotline_of = None
    if args.dialplan is not None:
        try:
            plan = load_dialplan(args.dialplan)
        except (ConfigError, UnreadableConfigError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"callbridge replay: dialplan {args.dialplan}: {first}", file=sys.stderr)
            return BAD_DIALPLAN
        hotline_of = plan_hotline_of(lambda: plan)
    code = 0
    for name in args.traces:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"callbridge replay: cannot read {name}: {exc.strerror}", file=sys.stderr)
            code = code or 2
            continue
        try:
            derived, tracker = replay_bytes(data, hotline_of=hotline_of,
                                            log=None if args.no_log_times else _log_beside(path))  # fmt: skip
        except TraceError as exc:
            print(f"callbridge replay: {name}: {exc.message}", file=sys.stderr)
            code = code or exc.exit_code
            continue
        out = sys.stdout.buffer
        if not args.no_events:
            for ev in derived:
                out.write(orjson.dumps(event_record(ev)) + b"\n")
        if args.state:
            out.write(orjson.dumps({"trace": name, "state": tracker.snapshot()}, option=orjson.OPT_INDENT_2) + b"\n")
        out.flush()
    return code
