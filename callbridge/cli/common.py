"""What the sub-commands share: how a local error is reported, and which settings file a command reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callbridge.errors import ConfigError, LocalError, UnreadableConfigError
from callbridge.settings import Settings, load_settings

#: The settings file read when ``--config`` is not given (used only if it exists).
DEFAULT_SETTINGS = Path("config/callbridge.yaml")


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


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help=f"settings file (default: {DEFAULT_SETTINGS} if present)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of ``--config`` (which must exist), else of ``config/callbridge.yaml`` if present, else
    the built-in defaults."""
    if args.config:
        return load_settings(Path(args.config))
    return load_settings(DEFAULT_SETTINGS if DEFAULT_SETTINGS.is_file() else None)
