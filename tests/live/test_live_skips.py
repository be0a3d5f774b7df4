"""Where the live PBX cannot run, the live suite skips and says why (issue 15, point 7; CI's build).

Not live tests themselves: they run everywhere. A stand-in "Asterisk" that dies of SIGILL at start plays
a build made for another CPU (``-march=native`` on an AVX-512 machine); ``asterisk -V`` works with such a
build, only a real start shows it, so the probe starts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from livepbx import probe_start, sigill_reason

HERE = Path(__file__).resolve().parent


def _fake_asterisk(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "asterisk"
    fake.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    fake.chmod(0o755)
    return fake


def test_a_build_that_dies_of_sigill_at_start_is_named_with_the_reason(tmp_path: Path) -> None:
    fake = _fake_asterisk(tmp_path, "kill -ILL $$")
    reason = probe_start(fake, timeout=20)
    assert "SIGILL" in reason and "BUILD_NATIVE" in reason and str(fake) in reason, reason


def test_an_exit_for_another_reason_is_not_taken_for_sigill(tmp_path: Path) -> None:
    fake = _fake_asterisk(tmp_path, "echo 'Unable to open specified master config file' >&2; exit 1")
    reason = probe_start(fake, timeout=20)
    assert "exited 1" in reason and "SIGILL" not in reason, reason
    assert sigill_reason(fake, 1, "") == ""
    assert "SIGILL" in sigill_reason(fake, 132, "")  # a shell's 128 + 4
    assert "SIGILL" in sigill_reason(fake, 0, "bash: line 1: 42 Illegal instruction (core dumped)")


def _run_live_suite(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "pytest", str(HERE / "test_live_config_and_blind.py"), "-q", "-ra",
            "-p", "no:cacheprovider", "-m", "live"]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=HERE.parents[1], check=False)


def test_the_live_suite_skips_with_the_sigill_reason_rather_than_erroring(tmp_path: Path) -> None:
    fake = _fake_asterisk(tmp_path, "kill -ILL $$")
    proc = _run_live_suite({**os.environ, "CALLBRIDGE_LIVE_ASTERISK": str(fake), "CALLBRIDGE_LIVE": ""})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "SKIPPED" in out and "SIGILL (illegal instruction)" in out, out[-3000:]
    assert " error" not in out and "passed" not in out, out[-3000:]


def test_callbridge_live_0_skips_the_live_suite() -> None:
    proc = _run_live_suite({**os.environ, "CALLBRIDGE_LIVE": "0"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "CALLBRIDGE_LIVE=0" in out and "SKIPPED" in out, out[-3000:]


def test_build_asterisk_probes_with_the_live_suites_own_probe_and_gives_its_reason(tmp_path: Path) -> None:
    """One start probe (issue 18): scripts/build-asterisk asks tests/live/livepbx.py, so a build that dies of
    SIGILL is named there with the same reason as in the live suite's skip message."""
    script = HERE.parents[1] / "scripts" / "build-asterisk"
    assert "waitfullybooted" not in script.read_text("utf-8"), "the script keeps no probe of its own"
    (tmp_path / "sbin").mkdir()
    fake = _fake_asterisk(tmp_path / "sbin", "kill -ILL $$")
    env = {**os.environ, "CALLBRIDGE_ASTERISK_ROOT": str(tmp_path), "CALLBRIDGE_LIVE": "", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(script), "--probe"], capture_output=True, text=True, timeout=120, env=env,
                          check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert probe_start(fake, timeout=20) in proc.stdout, proc.stdout
    assert "SIGILL (illegal instruction)" in proc.stdout and "BUILD_NATIVE" in proc.stdout
