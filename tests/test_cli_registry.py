"""The CLI registry: one module per sub-command under ``callbridge/cli/``, imported only when it runs.

``callbridge --help`` must stay instant and must not break when one sub-command's dependencies do: it imports
no sub-command module and nothing heavy (the daemon, the simulator, the adapters, pydantic, rich).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.cli import COMMANDS, build_parser, main, module_of, named_command

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "callbridge" / "cli"

#: modules (and their sub-modules) that a bare ``callbridge --help`` must not import
HEAVY = (
    "aiomqtt", "paho", "panoramisk", "pydantic", "rich", "structlog", "orjson", "uvloop", "asyncio",
    "callbridge.app", "callbridge.sim", "callbridge.bus", "callbridge.ami", "callbridge.store",
    "callbridge.dialplan", "callbridge.engine", "callbridge.calls", "callbridge.settings", "callbridge.demo",
)  # fmt: skip


#: ``python -m callbridge ARGV`` (runpy runs callbridge/__main__.py), then the modules it imported on stderr
PROBE = """
import json, runpy, sys
sys.argv = ["callbridge", *sys.argv[1:]]
try:
    runpy.run_module("callbridge", run_name="__main__", alter_sys=True)
finally:
    sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def imported_by(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -m callbridge ARGV`` and return the run and every module it imported.

    (Not ``python -X importtime``: it does not list modules imported through ``importlib.import_module``.)
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    listed = [line for line in done.stderr.splitlines() if line.startswith("MODULES ")]
    assert listed, done.stderr[-2000:]
    return done, set(json.loads(listed[-1].removeprefix("MODULES ")))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_imports_no_sub_command_and_nothing_heavy() -> None:
    done, modules = imported_by("--help")
    assert done.returncode == 0 and "usage: callbridge" in done.stdout, done.stderr[-2000:]
    assert "callbridge.cli" in modules and "argparse" in modules
    assert all(name in done.stdout for name in COMMANDS)  # every command listed, none of them imported
    assert sorted(m for m in modules if m.startswith("callbridge.cli.")) == []
    assert heavy(modules) == []


def test_a_sub_commands_help_imports_its_own_module_only() -> None:
    done, modules = imported_by("schema", "--help")
    assert done.returncode == 0 and "--output" in done.stdout, done.stderr[-2000:]
    assert sorted(m for m in modules if m.startswith("callbridge.cli.")) == ["callbridge.cli.schema"]
    assert not {"aiomqtt", "panoramisk", "callbridge.app", "callbridge.sim", "rich"} & modules


def test_every_registered_command_has_its_module_and_every_module_a_command() -> None:
    # a registry entry without a module ("bench" answered "not available in this build") is refused here
    for name in COMMANDS:
        mod = importlib.import_module(module_of(name))
        assert callable(mod.add_arguments) and callable(mod.main), name
    modules = {p.stem for p in CLI.glob("*.py")} - {"__init__", "common"}
    assert modules == {module_of(name).rsplit(".", 1)[1] for name in COMMANDS}


def test_bench_is_no_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    # benchmarks live in the checkout's bench/ package (not in a wheel): `python -m bench`
    with pytest.raises(SystemExit) as exc:
        main(["bench"])
    assert exc.value.code == 2 and "invalid choice: 'bench'" in capsys.readouterr().err


def test_the_named_command_is_the_first_word_that_is_no_option() -> None:
    assert named_command(["--version"]) is None
    assert named_command(["-h", "report", "--period", "today"]) == "report"
    assert named_command(["render-asterisk", "dialplans", "-o", "x"]) == "render-asterisk"


def test_a_parser_built_for_one_command_still_lists_the_others() -> None:
    parser = build_parser(commands=["check"])
    args = parser.parse_args(["check", "-q", "dialplans"])
    assert args.quiet and args.path == "dialplans" and callable(args.handler)
    assert "deadletters" in parser.format_help()
