"""``callbridge run`` and ``render-asterisk`` refuse bad input with the shared exit codes of local errors.

1 = invalid settings or dialplan (every located problem on stderr), 2 = a file cannot be read. ``run`` runs
as a process because it configures logging and the event loop policy for the whole interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.cli import main

REPO = Path(__file__).resolve().parent.parent
BROKEN_DIALPLAN = REPO / "tests" / "dialplan" / "broken" / "06_bad_kind.yaml"


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "callbridge", "run", "--no-bus", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip


@pytest.fixture
def good_settings(tmp_path: Path) -> Path:
    path = tmp_path / "callbridge.yaml"
    path.write_text(f"web: {{port: 0}}\nstore: {{path: {tmp_path / 'records.sqlite3'}}}\n", encoding="utf-8")
    return path


def test_invalid_settings_exit_1_with_located_problem(tmp_path: Path) -> None:
    settings = tmp_path / "bad.yaml"
    settings.write_text("ami:\n  port: many\n", encoding="utf-8")
    done = run_cli(tmp_path, "--config", str(settings))
    assert done.returncode == 1
    assert f"{settings}:2:9: error: ami.port:" in done.stderr


def test_missing_settings_file_exit_2(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "--config", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert done.stderr.startswith("callbridge run: ") and "no such settings file" in done.stderr


def test_invalid_dialplan_exit_1_with_located_problem(tmp_path: Path, good_settings: Path) -> None:
    done = run_cli(tmp_path, "--config", str(good_settings), "--dialplan", str(BROKEN_DIALPLAN))
    assert done.returncode == 1
    assert f"{BROKEN_DIALPLAN}:6:11: error: hotlines.110.kind:" in done.stderr
    assert not (tmp_path / "records.sqlite3").exists()  # refused before anything started


def test_unreadable_dialplan_exit_2(tmp_path: Path, good_settings: Path) -> None:
    done = run_cli(tmp_path, "--config", str(good_settings), "--dialplan", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("callbridge run: ")


def test_render_asterisk_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render-asterisk", str(BROKEN_DIALPLAN), "-o", str(tmp_path / "out")]) == 1
    assert f"{BROKEN_DIALPLAN}:6:11: error: hotlines.110.kind:" in capsys.readouterr().err
    assert main(["render-asterisk", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("callbridge render-asterisk: ")
    assert not (tmp_path / "out").exists()
