"""``callbridge`` command line: the registry of sub-commands, each in its own module, imported only when run.

Each sub-command lives in ``callbridge/cli/<name>.py`` (``-`` → ``_``) and exposes
``add_arguments(parser)`` and ``main(args) -> int``. Only the module of the sub-command named on the command
line is imported (``callbridge --help`` imports none of them), so start-up stays fast and one sub-command's
dependencies never weigh on, or break, another.

Benchmarks are not a sub-command: they live in the repository's ``bench/`` package, which an installed wheel
does not carry; from a checkout they run with ``python -m bench [--quick]`` (see ``bench/README.md``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection, Sequence

import callbridge
from callbridge import __version__

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
    "deadletters": "list, retry or drop the MQTT outbox's dead letters (messages the broker refused)",
}


def module_of(command: str) -> str:
    """The module implementing ``command``."""
    return f"{__name__}.{command.replace('-', '_')}"


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; the arguments of ``commands`` only (all when None), the others by name.

    A sub-command left out is still listed (``callbridge --help``) but its module is not imported.
    """
    parser = argparse.ArgumentParser(prog="callbridge", description=callbridge.__doc__)
    parser.add_argument("--version", action="version", version=f"callbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if commands is None or name in commands:
            mod = importlib.import_module(module_of(name))
            mod.add_arguments(sp)
            sp.set_defaults(handler=mod.main)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: its first word that is no option (the top level has only flags)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    name = named_command(words)
    parser = build_parser(commands=[name] if name in COMMANDS else [])
    args = parser.parse_args(words)
    if not args.command:
        parser.print_help()
        return 2
    code: int = args.handler(args)
    return code
