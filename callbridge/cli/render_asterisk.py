"""``callbridge render-asterisk``: write the Asterisk configuration the engine relies on, from the YAML.

The dialplan plus a site file (``--site``, default ``config/asterisk-site.yaml``: transport, carrier
address, trunk contacts, agents) give files that an existing Asterisk ``#include``s as they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callbridge.cli.common import report_local_error
from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.render_conf import render_all
from callbridge.dialplan.site import load_site
from callbridge.errors import ConfigError, UnreadableConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="dialplans", help="dialplan file or directory (default: dialplans)")
    parser.add_argument(
        "-o", "--output", default="config/asterisk", help="directory to write (default: config/asterisk)"
    )
    parser.add_argument(
        "--site", default="config/asterisk-site.yaml", help="site file (default: config/asterisk-site.yaml)"
    )
    parser.add_argument("--ami-username", default="callbridge", help="manager user (default: callbridge)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the files on disk differ")


def main(args: argparse.Namespace) -> int:
    try:
        plan = load_dialplan(Path(args.path))
        site = load_site(Path(args.site))
        files = render_all(plan, site, args.ami_username, site_file=str(args.site))
    except (UnreadableConfigError, ConfigError) as exc:
        return report_local_error("callbridge render-asterisk", exc)
    out = Path(args.output)
    if args.check:
        stale = [n for n, text in files.items() if not (out / n).is_file() or (out / n).read_text("utf-8") != text]
        for name in stale:
            print(f"{out / name}: out of date (run callbridge render-asterisk)", file=sys.stderr)
        return 1 if stale else 0
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0
