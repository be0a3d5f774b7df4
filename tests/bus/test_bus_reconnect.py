"""The one reconnect loop both MQTT connections (publisher, command server) run: ``reconnect_forever``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from callbridge.bus import publisher_mqtt
from callbridge.bus.command_server import CommandServer
from callbridge.bus.config import BusSettings
from callbridge.bus.publisher import Publisher
from callbridge.bus.publisher_mqtt import reconnect_forever


async def test_failures_back_off_exponentially_a_good_connection_resets_it_and_stop_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = BusSettings(host="127.0.0.1", port=1, site="lab", outbox_path=tmp_path / "o.db",
                           reconnect_min_s=0.01, reconnect_max_s=0.04)  # fmt: skip
    bounds: list[float] = []
    monkeypatch.setattr(random, "uniform", lambda low, high: bounds.append(high) or 0.0)  # no real waiting
    stopping = asyncio.Event()
    attempts: list[int] = []
    failures: list[str] = []

    async def connect_once(attempt: int, connected: Callable[[], None]) -> None:
        attempts.append(attempt)
        if attempt in (1, 2, 3, 5):
            raise aiomqtt.MqttError(f"refused {attempt}")
        if attempt == 4:
            connected()
            raise OSError("lost after connecting")
        stopping.set()  # attempt 6: a session that ends with stop()

    async with asyncio.timeout(5):
        await reconnect_forever(settings, stopping, connect_once, role="test", on_failure=failures.append)
    assert attempts == [1, 2, 3, 4, 5, 6]
    assert failures == ["refused 1", "refused 2", "refused 3", "lost after connecting", "refused 5"]
    # the upper bound of each jittered pause doubles up to the maximum, and starts again after attempt 4
    assert bounds == [0.01, 0.02, 0.04, 0.01, 0.02]


async def test_a_stop_during_the_pause_ends_the_loop_at_once(tmp_path: Path) -> None:
    settings = BusSettings(host="127.0.0.1", port=1, site="lab", outbox_path=tmp_path / "o.db",
                           reconnect_min_s=30.0, reconnect_max_s=60.0)  # fmt: skip
    stopping = asyncio.Event()

    async def connect_once(attempt: int, connected: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(0.05, stopping.set)
        raise OSError("refused")

    async with asyncio.timeout(5):  # not the 30 s pause
        await reconnect_forever(settings, stopping, connect_once, role="test", on_failure=lambda e: None)


async def test_publisher_and_command_server_both_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roles: list[str] = []

    async def recording(settings: BusSettings, stopping: asyncio.Event, connect_once: object, *, role: str,
                        on_failure: object) -> None:  # fmt: skip
        roles.append(role)

    monkeypatch.setattr("callbridge.bus.publisher.reconnect_forever", recording)
    monkeypatch.setattr("callbridge.bus.subscription.reconnect_forever", recording)  # the command server's loop
    assert publisher_mqtt.reconnect_forever is not recording
    settings = BusSettings(host="127.0.0.1", port=1, site="lab", outbox_path=tmp_path / "o.db")
    await Publisher(settings).run()
    await CommandServer(settings, handler=None).run()  # type: ignore[arg-type]
    assert roles == ["publisher", "commands"]
