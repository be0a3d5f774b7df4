"""``callbridge sim`` runs standalone: listens, takes the secret from the environment, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys

import pytest

from tests.conftest import REPO
from tests.sim.amiclient import TestClient

pytestmark = pytest.mark.timeout(30)


async def test_standalone_simulator_accepts_logins() -> None:
    secret = secrets.token_hex(8)
    env = {**os.environ, "CALLBRIDGE_SIM_SECRET": secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "sim", "--port", "0", "--config", "config/sim.yaml",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=REPO)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert "AMI listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        client = await TestClient.connect(port)
        assert (await client.login("callbridge", secret)).get("Message") == "Authentication accepted"
        frames = await client.send_list("QueueStatus")
        assert {f.get("Queue") for f in frames if f.name == "QueueParams"} == {"support", "hotline"}
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 10)
    assert rc == 0


async def test_missing_secret_is_a_config_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CALLBRIDGE_SIM_SECRET"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callbridge", "sim", "--port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert b"CALLBRIDGE_SIM_SECRET" in err
