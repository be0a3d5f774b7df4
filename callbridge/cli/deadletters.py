"""``callbridge deadletters``: list, retry and drop the outbox's dead letters (messages the broker refused).

``list`` prints one line per letter (``--json``: a JSON array); ``retry ID… | --all`` marks letters so that the
daemon publishes them again (within a few seconds while it runs, else at its next start); ``drop ID… | --all``
forgets them. Safe while the daemon runs. Exit 0 on success, 1 when an id matches nothing, 2 when the outbox
cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from callbridge.bus.deadletters import DeadLetterStore
from callbridge.cli.common import add_config_argument, settings_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outbox", default=None, help="outbox SQLite file (default: mqtt.outbox_path of the settings)")
    add_config_argument(parser)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the dead letters, oldest first")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of one line per letter")
    for name, text in (("retry", "publish these letters again"), ("drop", "forget these letters for good")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("ids", nargs="*", type=int, metavar="ID")
        sp.add_argument("--all", action="store_true", help="every dead letter")


def _outbox_path(args: argparse.Namespace) -> Path:
    return Path(args.outbox) if args.outbox else settings_from_args(args).mqtt.outbox_path


def main(args: argparse.Namespace) -> int:
    path = _outbox_path(args)
    try:
        store = DeadLetterStore(path)
    except (FileNotFoundError, OSError) as exc:
        print(f"callbridge deadletters: {exc}", file=sys.stderr)
        return 2
    with store:
        if args.action == "list":
            letters = [d.summary() for d in store.letters()]
            if args.json:
                sys.stdout.write(orjson.dumps(letters, option=orjson.OPT_INDENT_2).decode() + "\n")
            for d in letters if not args.json else ():
                at = datetime.fromtimestamp(float(str(d["at"])), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                retry = "  (retry pending)" if d["retry"] else ""
                print(f"{d['id']}\t{at}\t{d['topic']}\t{d['bytes']} B\t{d['reason']}{retry}")
            return 0
        if not args.ids and not args.all:
            print(f"callbridge deadletters {args.action}: name ids or --all", file=sys.stderr)
            return 1
        ids = None if args.all else args.ids
        done = store.mark_retry(ids) if args.action == "retry" else store.drop(ids)
        print(f"{args.action}: {done} dead letter(s)")
        return 0 if args.all or done == len(set(args.ids)) else 1
