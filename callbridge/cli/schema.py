"""``callbridge schema``: print the JSON Schema of the dialplan language (for editors and docs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from callbridge.dialplan.model import json_schema


def schema_text() -> str:
    return json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")


def main(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0
