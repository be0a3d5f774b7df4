"""``callbridge`` command line: one sub-command per module, imported only when used.

Each sub-command lives in ``callbridge/cli_<name>.py`` (``-`` → ``_``) and exposes
``add_arguments(parser)`` and ``main(args) -> int`` — so start-up stays fast and one broken optional
piece does not take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from callbridge.errors import ConfigError, LocalError, UnreadableConfigError

COMMANDS: dict[str, str] = {
    "check": "validate dialplan files (exit 0 valid, 1 invalid, 2 unreadable)",
    "schema": "print the JSON Schema of the dialplan language",
    "run": "run the daemon beside a PBX",
    "sim": "run the PBX simulator (an AMI server behaving like Asterisk 22)",
    "replay": "replay a recorded AMI stream through the tracker; print derived events as JSON lines",
    "demo": "a narrated day in a city's hotline network on the simulator and an embedded broker",
    "render-asterisk": "write the Asterisk configuration the engine relies on",
    "records": "query call and transfer records",
    "report": "KPI report for a period (markdown or CSV)",
    "bench": "run the benchmark suite",
    "deadletters": "list, retry or drop the MQTT outbox's dead letters (messages the broker refused)",
}


def report_local_error(prog: str, exc: LocalError) -> int:
    """Print a local error the way every sub-command does and return its exit code.

    2 = a file cannot be read; 1 = invalid input (each located problem on its own line).
    """
    if isinstance(exc, UnreadableConfigError):
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"{prog}: {exc}", file=sys.stderr)
    return 1


def _module(name: str) -> str:
    return "callbridge.cli_" + name.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callbridge", description=__doc__.splitlines()[0])
    from callbridge import __version__

    parser.add_argument("--version", action="version", version=f"callbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = importlib.import_module(_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != _module(name):
                raise
            sp.set_defaults(_unavailable=True)
            continue
        mod.add_arguments(sp)
        sp.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_unavailable", False):
        print(f"callbridge {args.command}: not available in this build", file=sys.stderr)
        return 2
    code: int = args._main(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
