"""The date-shifted passes of scripts/check: the date-sensitive tests run again under a faked far-away wall clock.

What is checked here: every test of the folders that read "today" carries the ``date_sensitive`` marker;
scripts/check runs those tests again through scripts/with-faked-date; and that faked clock really holds for
what the tests use — Python's clocks and time zone, sleeps, timed waits of threads and asyncio, child
processes and a mosquitto broker (libfaketime 0.9.10 breaks some of them unless set up as the script does).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
from zoneinfo import ZoneInfo

import pytest

from callbridge.testing.mosquitto import find_mosquitto
from tests.conftest import DATE_SENSITIVE_DIRS, REPO

WITH_FAKED_DATE = REPO / "scripts" / "with-faked-date"


def _faked_run(when: str, zone: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if subprocess.run(["bash", str(WITH_FAKED_DATE), "--check"], capture_output=True, check=False).returncode:
        pytest.skip("libfaketime or cc missing (scripts/setup installs faketime and gcc on Debian)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", str(WITH_FAKED_DATE), when, zone, sys.executable, "-c", textwrap.dedent(code)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_scripts_check_runs_the_date_sensitive_tests_again_at_two_boundaries() -> None:
    check = (REPO / "scripts" / "check").read_text(encoding="utf-8")
    assert 'SHIFTED_TESTS="date_sensitive and not browser"' in check
    assert 'bash scripts/with-faked-date "$when" "$zone"' in check and '-m "$SHIFTED_TESTS"' in check
    shifts = re.findall(r'"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\|([\w/]+)"', check)
    assert len(shifts) >= 2
    for when, zone in shifts:
        start = dt.datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(zone))
        assert start.year >= 2030, "far from any day the suite was written on"
        assert (start + dt.timedelta(minutes=1)).day == 1, "a minute before a month's end: the run crosses it"
    assert {zone for _, zone in shifts} >= {"UTC", "Asia/Shanghai"}


def test_every_test_of_the_date_reading_folders_is_marked() -> None:
    folders = [str(REPO / "tests" / name) for name in DATE_SENSITIVE_DIRS]
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", "not date_sensitive", *folders], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 5, f"unmarked tests in {DATE_SENSITIVE_DIRS}:\n{run.stdout}\n{run.stderr}"
    deselected = re.search(r"no tests collected \((\d+) deselected\)", run.stdout)
    assert deselected and int(deselected[1]) > 50, run.stdout  # the folders were collected, all marked


def test_the_faked_clock_holds_for_python_threads_asyncio_and_child_processes() -> None:
    run = _faked_run("2031-02-28 23:59:58", "Asia/Shanghai", """
        import asyncio, datetime as dt, queue, subprocess, threading, time
        from zoneinfo import ZoneInfo

        shanghai = ZoneInfo("Asia/Shanghai")
        start = dt.datetime.now(shanghai)
        assert dt.datetime(2031, 2, 28, 23, 59, 58, tzinfo=shanghai) <= start < dt.datetime(
            2031, 3, 1, 0, 0, 30, tzinfo=shanghai), start
        assert time.localtime().tm_gmtoff == 8 * 3600
        # sleeps and timed waits take their real length (they would fail or hang with other settings)
        t = time.monotonic(); time.sleep(0.2); slept = time.monotonic() - t
        lock = threading.Lock(); lock.acquire()
        t = time.monotonic(); assert not lock.acquire(timeout=0.2); waited = time.monotonic() - t
        t = time.monotonic()
        try:
            queue.Queue().get(timeout=0.2)
        except queue.Empty:
            queued = time.monotonic() - t

        async def main():
            t = time.monotonic()
            await asyncio.sleep(0.2)
            await asyncio.wait_for(asyncio.to_thread(time.sleep, 0.2), 5)
            try:
                await asyncio.wait_for(asyncio.Event().wait(), 0.2)
            except TimeoutError:
                return time.monotonic() - t

        looped = asyncio.run(main())
        for took, lo, hi in ((slept, 0.2, 2), (waited, 0.2, 2), (queued, 0.2, 2), (looped, 0.6, 4)):
            assert lo * 0.95 <= took < hi, (took, lo)
        # a child process sees the same faked day, and the run crosses midnight
        child = subprocess.run(["date", "+%Y-%m-%d %z"], capture_output=True, text=True, check=True).stdout
        time.sleep(2.5)
        assert dt.datetime.now(shanghai).date() == dt.date(2031, 3, 1)
        print("child", child.strip())
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split()[-2:] in (["2031-02-28", "+0800"], ["2031-03-01", "+0800"]), run.stdout


@pytest.mark.mosquitto
def test_mosquitto_and_aiomqtt_work_under_the_faked_clock() -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto missing (scripts/setup installs it)")
    run = _faked_run("2032-12-31 23:59:50", "UTC", """
        import asyncio, tempfile
        from pathlib import Path
        import aiomqtt
        from callbridge.testing.mosquitto import Mosquitto

        async def main(port):
            async with aiomqtt.Client("127.0.0.1", port, keepalive=5) as sub, \\
                    aiomqtt.Client("127.0.0.1", port, keepalive=5) as pub:
                await sub.subscribe("t/#", qos=1)
                for n in range(3):  # across midnight of the faked year end
                    await pub.publish(f"t/{n}", str(n), qos=1)
                    await asyncio.sleep(4)
                got = []
                async with asyncio.timeout(10):
                    async for message in sub.messages:
                        got.append(message.payload.decode())
                        if len(got) == 3:
                            return got

        with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker:
            print(asyncio.run(main(broker.port)))
    """, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("['0', '1', '2']"), run.stdout


@pytest.mark.date_sensitive
def test_the_date_shifted_pass_runs_at_its_faked_date() -> None:
    """Runs in scripts/check's date-shifted passes (skipped otherwise): proves the pass is really shifted."""
    faked = os.environ.get("CALLBRIDGE_FAKED_DATE")
    if not faked:
        pytest.skip("only in the date-shifted passes of scripts/check (scripts/with-faked-date)")
    when, zone = faked.split("|")
    start = dt.datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(zone))
    now = dt.datetime.now(ZoneInfo(zone))
    assert start <= now < start + dt.timedelta(hours=3), (now, faked)
