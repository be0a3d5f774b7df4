"""``App.start``/``App.stop`` are robust: idempotent stop, stop after a failed start, nothing left running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

import callbridge.app_reload as app_module  # the reload's loader
from callbridge.ami.client import ConnState
from callbridge.app import App
from callbridge.errors import ConfigError, PartFailedError
from callbridge.settings import Settings
from callbridge.sim.simulator import Simulator
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import SECRET, open_lab

pytestmark = pytest.mark.timeout(30)


def settings_for(port: int) -> Settings:
    return Settings.model_validate({"ami": {"host": "127.0.0.1", "port": port, "auth": "plain",
                                            "ping_interval": 1.0, "ping_timeout": 1.0}})  # fmt: skip


@pytest.fixture
async def sim_port(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Path]]:
    async with open_lab(tmp_path) as lab:  # a PBX simulator on the rendered example dialplans
        yield lab.sim, lab.dialplans


async def test_stop_is_idempotent_and_harmless_before_start(sim_port: tuple[Simulator, Path]) -> None:
    sim, dialplans = sim_port
    app = App(settings_for(sim.port), ami_secret=SECRET, dialplan_path=dialplans, enable_bus=False)
    await app.stop()  # never started: nothing to do
    app = App(settings_for(sim.port), ami_secret=SECRET, dialplan_path=dialplans, enable_bus=False)
    await app.start()
    assert app.ami is not None
    await app.ami.wait_connected(5)
    await app.stop()
    await app.stop()
    assert not app.ami.connected


async def test_stop_after_a_failed_start_does_not_raise_again(sim_port: tuple[Simulator, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    sim, dialplans = sim_port
    monkeypatch.delenv("CALLBRIDGE_AMI_SECRET", raising=False)
    app = App(settings_for(sim.port), dialplan_path=dialplans, enable_bus=False)  # no AMI secret anywhere
    with pytest.raises(ConfigError):
        await app.start()
    await app.stop()  # the failure was raised by start: stop cleans up quietly
    await app.stop()


async def test_a_crashed_task_still_closes_the_ami_connection(sim_port: tuple[Simulator, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    sim, dialplans = sim_port
    crashing = asyncio.Event()

    async def broken_watch(self: App) -> None:
        assert self.ami is not None
        await self.ami.wait_connected(5)
        crashing.set()
        raise RuntimeError("dialplan watcher crashed")

    monkeypatch.setattr(App, "_watch", broken_watch)
    app = App(settings_for(sim.port), ami_secret=SECRET, dialplan_path=dialplans, enable_bus=False)
    await app.start()
    async with asyncio.timeout(5):
        await crashing.wait()
    with pytest.raises(BaseException) as stopped:  # the crash is reported once, by stop …
        await app.stop()
    assert "crashed" in repr(stopped.value)
    await app.stop()  # … and never again
    assert app.ami is not None and app.ami.state is ConnState.CLOSED  # closed, not left reconnecting


@pytest.mark.mosquitto
async def test_a_part_that_fails_while_running_ends_the_run_and_says_offline(
    sim_port: tuple[Simulator, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody calls stop: the failing part itself ends the run, every other part is stopped (the bus says
    offline), and the failure names the part."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    sim, dialplans = sim_port

    async def broken_watch(self: App) -> None:
        assert self.ami is not None and self.publisher is not None
        await self.ami.wait_connected(5)
        await self.publisher.wait_connected()
        raise RuntimeError("dialplan watcher crashed")

    monkeypatch.setattr(App, "_watch", broken_watch)
    with Mosquitto(tmp_path / "broker") as broker:
        settings = Settings.model_validate({
            "site_id": "lifecycle", "ami": {"host": "127.0.0.1", "port": sim.port, "auth": "plain"},
            "mqtt": {"host": broker.host, "port": broker.port, "outbox_path": str(tmp_path / "outbox.sqlite3")},
        })  # fmt: skip
        app = App(settings, ami_secret=SECRET, dialplan_path=dialplans)
        run = asyncio.create_task(app.run(install_signals=False))
        with pytest.raises(PartFailedError) as failed:
            await asyncio.wait_for(run, 15)
        assert failed.value.part == "dialplan watcher" and "crashed" in failed.value.cause
        assert app.ami is not None and app.ami.state is ConnState.CLOSED

        async with aiomqtt.Client(broker.host, broker.port, identifier="lifecycle-status") as client:
            await client.subscribe("callbridge/lifecycle/status", qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
        assert bytes(message.payload) == b"offline"


async def test_a_reload_that_crashes_keeps_the_daemon_running(sim_port: tuple[Simulator, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A bug while loading a changed dialplan (not a located problem) is logged; the watcher keeps going, the
    running plan stays, and the daemon still stops when asked."""
    sim, dialplans = sim_port
    app = App(settings_for(sim.port), ami_secret=SECRET, dialplan_path=dialplans, enable_bus=False,
              watch_interval=0.05)  # fmt: skip
    running = app.plan
    await app.start()
    assert app.ami is not None
    await app.ami.wait_connected(5)
    calls = []

    def crashing_load(path: Path) -> None:
        calls.append(path)
        raise KeyError("label")

    monkeypatch.setattr(app_module, "load_dialplan", crashing_load)
    (dialplans / "zz-touched.yaml").write_text("# an edit\n", encoding="utf-8")
    async with asyncio.timeout(5):
        while len(calls) < 1:  # noqa: ASYNC110 - the watcher polls the files; bounded
            await asyncio.sleep(0.02)
    (dialplans / "zz-touched.yaml").write_text("# a second edit\n", encoding="utf-8")
    async with asyncio.timeout(5):
        while len(calls) < 2:  # noqa: ASYNC110 - the watcher survived the first crash
            await asyncio.sleep(0.02)
    assert app.plan is running
    async with asyncio.timeout(10):
        await app.stop()
