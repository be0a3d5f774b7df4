"""The commands the README and the docs show work as written.

* Every command of README's command table: its ``--help`` through the installed ``callbridge`` script, every
  form it shows (optional parts left out and put in) accepted by the argument parser, and the ones that can
  run offline run for real, as written, with placeholders filled in.
* Every ``callbridge …`` command quoted anywhere in README.md or docs/ parses.
* Every MQTT command verb named in the README, docs, dialplans and broker ACL exists in the command registry.
* ``callbridge sim`` without its secret says what to export; ``callbridge report`` takes the dialplans'
  answer-rate targets without ``--dialplan``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from callbridge.bus.commands import VERBS
from callbridge.cli import COMMANDS, build_parser
from callbridge.store.records import RecordStore
from tests.conftest import traces_dir
from tests.deploy.dockerfile import REPO
from tests.store.records_scenario import PERIOD, morning

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))

#: what the table's placeholders stand for when a form is run or parsed
PLACEHOLDERS = {"PATH": "dialplans/", "DIR": "{tmp}/asterisk", "URL": "mqtt://127.0.0.1:1883", "TRACE…": "{traces}",
                "HOURS": "24", "--period …": f"--period {PERIOD}"}


def table_commands() -> list[str]:
    """The backticked commands of the first column of README's command table."""
    text = README.read_text(encoding="utf-8")
    table = re.search(r"^\| command \| what it does \|\n\|[-|]+\|\n((?:\|.*\n)+)", text, re.M)
    assert table, "README.md: the command table (| command | what it does |) is gone"
    out: list[str] = []
    for row in table.group(1).splitlines():
        out += re.findall(r"`([^`]+)`", row.split(" | ", 1)[0])
    return out


def forms(command: str) -> list[list[str]]:
    """The shortest and the longest form of a documented command, placeholders filled, ``…`` dropped."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    shortest = re.sub(r"\s*\[[^\]]*\]", "", command)
    longest = re.sub(r"\[([^\]]*)\]", r"\1", command)
    return [[w for w in shlex.split(f) if w != "…"] for f in dict.fromkeys((shortest, longest))]


def callbridge_script() -> str:
    found = Path(sys.executable).parent / "callbridge"
    script = str(found) if found.exists() else shutil.which("callbridge")
    assert script, "the `callbridge` command is not installed (pip install -e . installs it)"
    return script


def fill(argv: list[str], tmp: Path, traces: list[Path]) -> list[str]:
    """Placeholders filled: ``{tmp}`` the test's folder, ``{traces}`` every recorded trace."""
    out: list[str] = []
    for w in argv:
        out += [str(t) for t in traces] or ["t.rx.raw"] if w == "{traces}" else [w.format(tmp=tmp)]
    return out


def run(argv: list[str], tmp: Path, traces: list[Path], **kw: object) -> subprocess.CompletedProcess[str]:
    words = fill(argv, tmp, traces)
    if words[0] == "callbridge":
        words[0] = callbridge_script()
    elif words[:1] == ["python"]:
        words[0] = sys.executable
    return subprocess.run(words, cwd=REPO, capture_output=True, text=True, timeout=60, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def recorded_traces() -> list[Path]:
    return sorted(traces_dir().glob("*.rx.raw")) if traces_dir().is_dir() else []


def records_db(tmp: Path) -> Path:
    db = tmp / "records.sqlite3"
    store = RecordStore.sqlite(db)
    store.write(morning())
    store.close()
    return db


def _check(words: list[str], tmp: Path, traces: list[Path]) -> None:
    res = run(words, tmp, traces)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def _schema(words: list[str], tmp: Path, traces: list[Path]) -> None:
    res = run(words, tmp, traces)
    assert res.returncode == 0 and "properties" in json.loads(res.stdout), res.stderr


def _render(words: list[str], tmp: Path, traces: list[Path]) -> None:
    if "-o" not in words:
        return  # without -o it writes config/asterisk of this checkout: parsed above, not run
    res = run(words, tmp, traces)
    assert res.returncode == 0, res.stderr
    assert any((tmp / "asterisk").glob("extensions*.conf")), list((tmp / "asterisk").iterdir())


def _sim(words: list[str], tmp: Path, traces: list[Path]) -> None:
    secret = secrets.token_hex(8)
    # as written, plus --port 0: other test runs on this machine may hold the default 5038
    proc = subprocess.Popen([callbridge_script(), *words[1:], "--port", "0"], cwd=REPO,
                            env={**os.environ, "CALLBRIDGE_SIM_SECRET": secret}, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "AMI listening on 127.0.0.1:" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def _replay(words: list[str], tmp: Path, traces: list[Path]) -> None:
    if not traces:
        print(f"no recorded trace under {traces_dir()}: `callbridge replay` only parsed, not run")
        return
    res = run(words, tmp, traces)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert events and all("type" in e for e in events)


def _records(words: list[str], tmp: Path, traces: list[Path]) -> None:
    res = run([*words, "--db", str(records_db(tmp))], tmp, traces)
    assert res.returncode == 0 and isinstance(json.loads(res.stdout), list), res.stderr


def _report(words: list[str], tmp: Path, traces: list[Path]) -> None:
    res = run([*words, "--db", str(records_db(tmp))], tmp, traces)
    assert res.returncode == 0, res.stderr
    header = next(line for line in res.stdout.splitlines() if line.startswith("| ") and "12345" not in line)
    row = next(line for line in res.stdout.splitlines() if line.startswith("| 12345 |"))
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    target = next(v for k, v in cells.items() if "target" in k.lower())
    assert target == "85%", f"12345's target is 0.85 in dialplans/12345.yaml: {header}\n{row}"


#: how each table command runs offline for real; None = --help and parsing only, with the reason
REAL: dict[str, Callable[[list[str], Path, list[Path]], None] | str] = {
    "check": _check,
    "schema": _schema,
    "render-asterisk": _render,
    "sim": _sim,
    "replay": _replay,
    "records": _records,
    "report": _report,
    "run": "needs a PBX: tests/deploy/test_image_layout.py runs it against the simulator",
    "demo": "minutes long: tests/demo/ runs it",
    "bench": "scripts/check runs `python -m bench --quick` itself",
}


def name_of(words: list[str]) -> str:
    return words[2] if words[:2] == ["python", "-m"] else words[1]


@pytest.mark.timeout(300)
def test_every_command_of_the_readme_table_works_as_written(tmp_path: Path) -> None:
    commands = table_commands()
    assert len(commands) >= 9
    traces = recorded_traces()
    parser = build_parser()
    for command in commands:
        for words in forms(command):
            name = name_of(words)
            if name not in REAL:
                print(f"README command {command!r}: --help and parsing only (say in REAL how it runs offline)")
            help_ = run([*words[:3 if words[0] == "python" else 2], "--help"], tmp_path, traces)
            assert help_.returncode == 0 and "usage:" in help_.stdout, (command, help_.stderr)
            for flag in (w for w in words if w.startswith("-")):
                assert flag.split("=")[0] in help_.stdout, f"{command!r}: {flag} is not an option of {name}"
            if words[0] == "callbridge":
                filled = fill(words[1:], tmp_path, traces)
                with contextlib.redirect_stderr(io.StringIO()) as err:
                    try:
                        parser.parse_args(filled)
                    except SystemExit:
                        pytest.fail(f"README command {command!r} is refused: {err.getvalue()}")
            real = REAL.get(name)
            if callable(real):
                real(words, tmp_path, traces)


def quoted_commands() -> list[tuple[str, str]]:
    """``callbridge …`` in inline code, and lines of fenced blocks that run it (env assignments, ``&``, comments
    left out)."""
    out = []
    for doc in [README, *DOCS]:
        text = doc.read_text(encoding="utf-8")
        out += [(doc.name, span) for span in re.findall(r"`(callbridge [^`]+)`", text)]
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
            for line in block.splitlines():
                line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line.split("  #", 1)[0].strip()).removesuffix("&").strip()
                if line.startswith("callbridge "):
                    out.append((doc.name, line))
    return out


def test_every_quoted_callbridge_command_parses() -> None:
    parser = build_parser()
    seen = 0
    for doc, span in quoted_commands():
        assert span.split()[1] in COMMANDS, f"{doc}: `{span}` names no callbridge command"
        if len(span.split()) == 2:
            continue  # `callbridge deadletters`: names the command (it exists: checked above), shows no call
        # the shortest form; of alternatives written a|b, the first
        words = fill([w.split("|")[0] for w in forms(span)[0] if "<" not in w], Path("/tmp"), [])
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                parser.parse_args(words[1:])
            except SystemExit as exc:
                assert exc.code == 0, f"{doc}: `{span}` is refused: {err.getvalue()}"
        seen += 1
    assert seen >= 10


VERB_PATTERNS = (
    r"cmd/([a-z][a-z_.]*)",  # topics: callbridge/<site>/cmd/set_mode, ACL lines
    r"\bcommands? `([a-z][a-z_.]*)`",  # "MQTT command `set_mode`"
    r"`([a-z][a-z_.]*)` command",  # "the `reload` command"
)


def named_verbs() -> list[tuple[str, str]]:
    acl = REPO / "config" / "mosquitto" / "callbridge.acl"
    files = [README, *DOCS, *sorted((REPO / "dialplans").glob("*.yaml")), acl]
    out = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in VERB_PATTERNS:
            out += [(path.name, verb) for verb in re.findall(pattern, text)]
        # README: "Commands: `callbridge/<site>/cmd/<verb>` (`transfer`, `complete`, …)"
        for listing in re.findall(r"cmd/<verb>`\s*\(([^)]*)\)", text):
            out += [(path.name, verb) for verb in re.findall(r"`([a-z_]+)`", listing)]
    return out


def test_every_command_verb_named_in_docs_dialplans_and_acl_exists() -> None:
    named = named_verbs()
    assert len({v for _, v in named}) >= 6
    unknown = [(f, v) for f, v in named if v not in VERBS]
    assert not unknown, f"verbs named that the command registry does not know: {unknown}; known: {sorted(VERBS)}"
    listed = set(re.findall(r"`([a-z_]+)`", (REPO / "docs" / "mqtt.md").read_text(encoding="utf-8")))
    assert set(VERBS) <= listed, f"docs/mqtt.md does not describe {sorted(set(VERBS) - listed)}"


def test_verb_scan_finds_a_wrong_verb() -> None:
    text = "# Modes switch at run time (MQTT command `mode.switch`).\n"
    assert re.findall(VERB_PATTERNS[1], text) == ["mode.switch"]


def test_sim_without_its_secret_says_what_to_export() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CALLBRIDGE_SIM_SECRET"}
    res = subprocess.run([callbridge_script(), "sim", "--config", "config/sim.yaml", "--port", "0"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2
    assert "export CALLBRIDGE_SIM_SECRET=" in res.stderr and "CALLBRIDGE_AMI_SECRET" in res.stderr, res.stderr
    assert "CALLBRIDGE_SIM_SECRET" in README.read_text(encoding="utf-8")


def _report_targets(cwd: Path, *args: str) -> tuple[dict[str, str], str]:
    res = subprocess.run([callbridge_script(), "report", "--period", PERIOD, "--format", "csv", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return {r["hotline"]: r["target"] for r in csv.DictReader(io.StringIO(res.stdout))}, res.stderr


def test_report_takes_the_dialplans_targets_without_dialplan_option(tmp_path: Path) -> None:
    db = str(records_db(tmp_path))
    # in a clone: config/callbridge.yaml -> dialplan.path dialplans (beside it) -> 12345.yaml says 0.85
    targets, _ = _report_targets(REPO, "--db", db)
    assert targets["12345"] == "0.85" and targets["110"] == "0.98"
    # installed elsewhere: the settings named by --config, whose dialplans sit beside them
    etc = tmp_path / "etc"
    shutil.copytree(REPO / "dialplans", etc / "plans")
    (etc / "plans" / "12345.yaml").write_text(
        (etc / "plans" / "12345.yaml").read_text(encoding="utf-8").replace("answer_rate_target: 0.85",
                                                                           "answer_rate_target: 0.9"),
        encoding="utf-8")
    (etc / "callbridge.yaml").write_text("dialplan: {path: plans}\n", encoding="utf-8")
    empty = tmp_path / "cwd"
    empty.mkdir()
    targets, _ = _report_targets(empty, "--db", db, "--config", str(etc / "callbridge.yaml"))
    assert targets["12345"] == "0.9"
    # nothing to read: 80 % for all, and the report says why
    targets, err = _report_targets(empty, "--db", db)
    assert set(targets.values()) == {"0.8"} and "no dialplan at dialplans" in err
