"""Fixtures of the bus tests: a real mosquitto on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.testing.mosquitto import Mosquitto, find_mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as b:
        yield b
