"""``callbridge run`` as a real process beside the PBX simulator and a real mosquitto: signals and start-up.

* SIGHUP (a reload, valid or rejected) followed by SIGTERM at once or a little later always ends the
  process, cleanly and quickly, and the retained status says ``offline`` (issue 14, point 8: once in four
  runs the daemon ignored SIGTERM and SIGINT for over a minute);
* a part that cannot start (the web port is held, the records store cannot be opened) ends the process
  with a message naming the part and the cause and a non-zero exit, instead of a silent half daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import ROOT, SECRET, copy_dialplans, sim_config, sim_phone_context

pytestmark = [pytest.mark.mosquitto]

SITE = "sigtest"
STATUS = f"callbridge/{SITE}/status"
#: How long a stop may take (SIGTERM → exit), seconds.
STOP_BOUND_S = 5.0


@dataclass
class Daemon:
    """One ``callbridge run`` process; its JSON log lines (stderr) are collected as they come."""

    proc: asyncio.subprocess.Process
    lines: list[dict[str, object]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            line = raw.decode(errors="replace")
            self.text.append(line)
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    self.lines.append(parsed)

    def saw(self, event: str) -> bool:
        return any(line.get("event") == event for line in self.lines)

    async def until(self, event: str, timeout: float = 20.0) -> None:  # noqa: ASYNC109 - bounded wait
        async with asyncio.timeout(timeout):
            while not self.saw(event):
                if self.proc.returncode is not None:
                    raise AssertionError(f"exited {self.proc.returncode} before {event}:\n{self.output()}")
                await asyncio.sleep(0.01)

    async def finished(self, timeout: float) -> int:  # noqa: ASYNC109 - bounded wait
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return code

    def output(self) -> str:
        return "".join(self.text[-40:])


@dataclass
class StatusWatch:
    """The retained status topic as a wallboard sees it (every value, in order)."""

    values: list[str] = field(default_factory=list)

    async def until(self, value: str, since: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while value not in self.values[since:]:  # noqa: ASYNC110 - fed by the subscriber task, bounded
                await asyncio.sleep(0.01)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Path]]:
    dialplans = copy_dialplans(tmp_path / "dialplans")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    simulator = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)])
    await simulator.start()
    try:
        yield simulator, dialplans
    finally:
        await simulator.stop()


@pytest.fixture
async def status(broker: Mosquitto) -> AsyncIterator[StatusWatch]:
    watch = StatusWatch()

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            watch.values.append(bytes(message.payload).decode())

    async with aiomqtt.Client(broker.host, broker.port, identifier="signal-test-status", timeout=10) as client:
        await client.subscribe(STATUS, qos=1)
        task = asyncio.create_task(collect(client))
        try:
            yield watch
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def write_settings(tmp_path: Path, ami_port: int, dialplans: Path, broker: Mosquitto | None, *, web_port: int = 0,
                   store: Path | None = None) -> Path:  # fmt: skip
    mqtt = (f"mqtt: {{host: {broker.host}, port: {broker.port}, outbox_path: {tmp_path / 'outbox.sqlite3'}}}\n"
            if broker is not None else "")  # fmt: skip
    settings = tmp_path / "callbridge.yaml"
    settings.write_text(
        f"site_id: {SITE}\nami: {{host: 127.0.0.1, port: {ami_port}, auth: plain}}\n{mqtt}"
        f"dialplan: {{path: {dialplans}}}\nlog: {{format: json, level: info}}\nweb: {{port: {web_port}}}\n"
        f"store: {{path: {store or tmp_path / 'records.sqlite3'}}}\n",
        encoding="utf-8",
    )
    return settings


async def start_daemon(settings: Path, cwd: Path, *extra: str) -> Daemon:
    env = {**os.environ, "CALLBRIDGE_AMI_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "run", "--config", str(settings), *extra,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=env, cwd=cwd,
    )  # fmt: skip
    daemon = Daemon(proc)
    daemon.start_reading()
    return daemon


#: Pause between SIGHUP and SIGTERM, cycled through: at once, while the reload reads the files in its worker
#: thread, while it swaps and publishes, after it is done (seconds).
GAPS = (0.0, 0.0005, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_sighup_then_sigterm_stops_the_daemon_within_5_s_every_time(
    tmp_path: Path, broker: Mosquitto, sim: tuple[Simulator, Path], status: StatusWatch
) -> None:
    """50 real start-ups, each ended by SIGHUP then SIGTERM at a different moment of the reload.

    Every run: the reload is a real one (a valid change every other run, a rejected file otherwise, so
    the file watcher races the signal too), SIGTERM follows after one of :data:`GAPS`, the process
    exits 0 within :data:`STOP_BOUND_S` and the retained status says ``offline`` again. All 50 cycles run,
    one daemon at a time: a start-up to "AMI connected and status online" takes about a second on 2 cores
    (Python's imports of the dialplan models and the logging stack are most of it; the daemon itself
    connects in milliseconds) and a stop a few hundred ms, so the test takes 1.5-2 minutes — the price of
    exercising the race 50 times with real processes rather than a handful.
    """
    simulator, dialplans = sim
    settings = write_settings(tmp_path, simulator.port, dialplans, broker)
    extra = dialplans / "zz-extra.yaml"
    slowest = 0.0
    for cycle in range(50):
        since = len(status.values)
        daemon = await start_daemon(settings, tmp_path)
        try:
            await daemon.until("ami.connected")
            await status.until("online", since)
            if cycle % 2:
                extra.write_text("hotlines: {110: {kind: nonsense}}\n", encoding="utf-8")  # rejected
            else:
                extra.write_text(f"# edit {cycle}\n", encoding="utf-8")  # valid: the plan is swapped
            daemon.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(GAPS[cycle % len(GAPS)])
            daemon.proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                code = await daemon.finished(STOP_BOUND_S)
            except TimeoutError:
                raise AssertionError(f"cycle {cycle}: still running {STOP_BOUND_S}s after SIGTERM:\n"
                                     f"{daemon.output()}") from None  # fmt: skip
            slowest = max(slowest, time.monotonic() - sent)
            assert code == 0, f"cycle {cycle}: exit {code}\n{daemon.output()}"
            assert daemon.saw("callbridge.stopped"), daemon.output()
            await status.until("offline", since)
            assert status.values[-1] == "offline", status.values[since:]
        finally:
            if daemon.proc.returncode is None:
                daemon.proc.kill()
                await daemon.proc.wait()
            extra.unlink(missing_ok=True)
    assert slowest < STOP_BOUND_S


async def test_a_held_web_port_ends_the_run_naming_the_port_and_says_offline(
    tmp_path: Path, broker: Mosquitto, sim: tuple[Simulator, Path], status: StatusWatch
) -> None:
    simulator, dialplans = sim
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # what an earlier instance that lost its broker connection uncleanly may have left behind
        async with aiomqtt.Client(broker.host, broker.port, identifier="signal-test-seed") as seed:
            await seed.publish(STATUS, b"online", qos=1, retain=True)
        await status.until("online", 0)
        daemon = await start_daemon(write_settings(tmp_path, simulator.port, dialplans, broker, web_port=port),
                                    tmp_path)  # fmt: skip
        try:
            code = await daemon.finished(15.0)
        except TimeoutError:
            daemon.proc.kill()
            await daemon.proc.wait()
            raise AssertionError(f"a held web port left the daemon running:\n{daemon.output()}") from None
    out = daemon.output()
    assert code == 3, out
    assert f"callbridge run: web: cannot listen on 127.0.0.1:{port}: Address already in use" in out
    failed = [line for line in daemon.lines if line.get("event") == "callbridge.part_failed"]
    assert failed and failed[0]["part"] == "web" and str(port) in str(failed[0]["error"])
    assert not daemon.saw("ami.connected")  # nothing was started beside the PBX before the port was checked
    await status.until("offline", 1)
    assert status.values[-1] == "offline"


async def test_an_unusable_records_store_ends_the_run_naming_it(tmp_path: Path, sim: tuple[Simulator, Path]) -> None:
    simulator, dialplans = sim
    not_a_folder = tmp_path / "records-here"
    not_a_folder.write_text("a file where the store's folder should be\n", encoding="utf-8")
    store = not_a_folder / "records.sqlite3"
    settings = write_settings(tmp_path, simulator.port, dialplans, None, store=store)
    daemon = await start_daemon(settings, tmp_path, "--no-bus")
    try:
        code = await daemon.finished(15.0)
    except TimeoutError:
        daemon.proc.kill()
        await daemon.proc.wait()
        raise AssertionError(f"an unusable store left the daemon running:\n{daemon.output()}") from None
    out = daemon.output()
    assert code == 3, out
    assert f"callbridge run: records store: {store}:" in out
    assert not daemon.saw("ami.connected")
