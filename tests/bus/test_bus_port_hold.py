"""A server restarted on its port finds it free: the port is held meanwhile (callbridge.testing.ports).

CI once failed the 60 s kill -9 drill: mosquitto, restarted on its port, exited with 1, most likely because
the port had been left unbound for a minute and the kernel gives an unbound port to anybody's
``bind(port 0)`` (another suite ran on the machine). The control below reproduces exactly that.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from callbridge.testing.mosquitto import find_mosquitto
from callbridge.testing.ports import PortHold

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def test_a_held_port_refuses_a_plain_bind_and_is_free_again_once_closed() -> None:
    with PortHold() as hold, socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
        other.bind((hold.host, hold.port))
    assert not hold.held
    with socket.socket() as other:
        other.bind((hold.host, hold.port))


async def test_a_server_that_reuses_addresses_listens_and_serves_on_a_held_port() -> None:
    with PortHold() as hold:
        for _round in range(2):  # started, stopped, started again on the same port
            server = await asyncio.start_server(echo, hold.host, hold.port)
            reader, writer = await asyncio.open_connection(hold.host, hold.port)
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


def in_private_netns(mode: str) -> dict[str, object]:
    """tests/bus/port_netns.py in a network namespace of its own, where it may use every port-0 port."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux's unshare (util-linux) for a private network namespace")
    if os.geteuid() != 0:
        pytest.skip("needs root for a private network namespace (unshare --net) and its own port range")
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"this machine allows no private network namespace: {probe.stderr.strip()}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["unshare", "--net", sys.executable, str(HERE / "port_netns.py"), mode],
                          capture_output=True, text=True, timeout=60, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.mosquitto
def test_mosquitto_killed_restarts_on_its_port_after_others_took_every_free_port() -> None:
    seen = in_private_netns("held")
    others = seen["others_got"]
    assert isinstance(others, list)
    # the rush bound port 0 until the kernel refused: the namespace's 20 ports less the broker's, less the
    # one or two that the start-up probe's closed connections keep in TIME_WAIT
    assert 16 <= len(others) <= 19, others
    assert seen["port"] not in others
    assert seen["restart_error"] == ""


@pytest.mark.mosquitto
def test_without_the_hold_the_rush_takes_the_port_and_the_restart_says_so() -> None:
    """The control: the scenario above does reproduce the CI failure when the port is not held, and the
    error names the port and carries the restarted broker's own log line."""
    seen = in_private_netns("unheld")
    others = seen["others_got"]
    assert isinstance(others, list)
    assert seen["port"] in others
    error = seen["restart_error"]
    assert isinstance(error, str)
    assert f"on port {seen['port']}" in error and "Address already in use" in error
