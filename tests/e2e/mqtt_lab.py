"""The e2e lab with its bus on a real mosquitto (one place for the MQTT-backed fixtures of tests/e2e)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import Lab, open_lab


@contextlib.asynccontextmanager
async def mqtt_lab_on_mosquitto(tmp_path: Path) -> AsyncIterator[tuple[Lab, Mosquitto]]:
    """A fresh mosquitto and the lab publishing to it (fast reconnects); skips without mosquitto."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as broker:
        mqtt = {"host": broker.host, "port": broker.port, "site": "lab", "outbox_path": str(tmp_path / "outbox.db"),
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.5}  # fmt: skip
        async with open_lab(tmp_path, mqtt) as lab:
            yield lab, broker
