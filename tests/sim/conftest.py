"""Fixtures: an embedded simulator on a free port with a generated secret."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from callbridge.sim.config import lab_config
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from tests.sim.amiclient import TestClient


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(12)


@pytest.fixture
async def sim(secret: str) -> AsyncIterator[Simulator]:
    users = [AmiUser("callbridge", secret), AmiUser("monitor", secret, read=frozenset({"system"}))]
    simulator = Simulator(lab_config(time_scale=50.0), users=users, login_fail_delay=0.05)
    await simulator.start()
    yield simulator
    await simulator.stop()
    assert simulator.errors == []


@pytest.fixture
async def client(sim: Simulator, secret: str) -> AsyncIterator[TestClient]:
    c = await TestClient.connect(sim.port)
    reply = await c.login("callbridge", secret)
    assert reply.get("Message") == "Authentication accepted"
    yield c
    await c.close()
