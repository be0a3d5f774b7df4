"""``callbridge records``: query call and transfer records (JSON or CSV).

Without ``--id``: one row per call presentation matching the filters. With ``--id``: the full timeline of
that call and both sides of its transfers (JSON), or its events (CSV). Exit 0 on success, 1 on bad input,
2 when the records cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from callbridge.cli.common import add_config_argument, report_local_error, settings_from_args
from callbridge.errors import LocalError, UnreadableConfigError
from callbridge.store.periods import parse_instant
from callbridge.store.records import CALL_COLUMNS, RecordStore, open_record_store, rows_to_csv

EVENT_COLUMNS = ("at", "type", "call_id", "hotline", "data")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="SQLite records file (overrides the settings)")
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN (prefer env CALLBRIDGE_POSTGRES_DSN)")
    add_config_argument(parser)


def open_store_from_args(args: argparse.Namespace) -> RecordStore:
    """The store named on the command line, else in the settings; never creates an empty SQLite file."""
    path: Path | None = Path(args.db) if args.db else None
    dsn: str | None = args.dsn
    if path is None and dsn is None:
        settings = settings_from_args(args)
        if settings.store.postgres_dsn is not None:
            dsn = settings.store.postgres_dsn.get_secret_value()
        else:
            path = settings.store.path
    if dsn is None and path is not None and not path.is_file():
        raise UnreadableConfigError(f"no records at {path} (use --db PATH or the settings' store.path)")
    return open_record_store(path=path, dsn=dsn)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--number", help="caller number (exact), also when carried by a transfer")
    parser.add_argument("--from", dest="start", metavar="ISO", help="offered at or after (local time if no offset)")
    parser.add_argument("--to", dest="end", metavar="ISO", help="offered before")
    parser.add_argument("--hotline", help="calls offered to, or transferred from/to, this hotline")
    parser.add_argument("--id", dest="call_id", help="one call: its full timeline, both sides of its transfers")
    parser.add_argument("--limit", type=int, default=10_000, help="at most this many rows (default 10000)")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    add_store_arguments(parser)


def main(args: argparse.Namespace) -> int:
    try:
        start = parse_instant(args.start) if args.start else None
        end = parse_instant(args.end) if args.end else None
        store = open_store_from_args(args)
    except LocalError as exc:
        return report_local_error("callbridge records", exc)
    try:
        if args.call_id:
            timeline = store.call_timeline(args.call_id)
            if timeline is None:
                print(f"callbridge records: no call {args.call_id!r}", file=sys.stderr)
                return 1
            if args.format == "csv":
                rows = [{**e, "data": orjson.dumps(e["data"]).decode()} for e in timeline["events"]]
                sys.stdout.write(rows_to_csv(rows, EVENT_COLUMNS))
            else:
                sys.stdout.write(orjson.dumps(timeline, option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        calls = store.search_calls(number=args.number, start=start, end=end, hotline=args.hotline, limit=args.limit)
        if args.format == "csv":
            sys.stdout.write(rows_to_csv(calls, CALL_COLUMNS))
        else:
            sys.stdout.write(orjson.dumps(calls, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    finally:
        store.close()
