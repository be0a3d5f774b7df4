"""Per-hotline scope of command keys, decided by the engine against the real call (mosquitto, simulator)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from callbridge.bus.commands import canonical_body, sign
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import Lab, agent_endpoint, open_lab

pytestmark = pytest.mark.mosquitto

KEYS = {"desk-110": "desk-110-secret-0123", "desk-12345": "desk-12345-secret-01", "desk-119": "desk-119-secret-01234"}


@pytest.fixture
async def keyed_lab(tmp_path: Path) -> Any:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    keys = tmp_path / "secrets" / "command-keys.yaml"  # a secret file outside the repository
    keys.parent.mkdir()
    keys.write_text("keys:\n" + "".join(
        f"  - {{id: {k}, secret: {s}, roles: [agent], hotlines: ['{k.split('-')[1]}']}}\n" for k, s in KEYS.items()))
    with Mosquitto(tmp_path / "broker") as broker:
        mqtt = {"host": broker.host, "port": broker.port, "site": "lab", "outbox_path": str(tmp_path / "outbox.db"),
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "command_keys_file": str(keys),
                "command_require_signature": True}  # fmt: skip
        async with open_lab(tmp_path, mqtt) as lab:
            assert lab.app.command_server is not None
            async with asyncio.timeout(10):
                await lab.app.command_server.wait_subscribed()
            yield lab, broker


async def send(client: aiomqtt.Client, verb: str, body: dict[str, Any], key: str, corr: str | None = None) -> None:
    """A signed MQTT 3.1.1 command (the body's ``key`` and ``sig``)."""
    body = {**body, "reply_to": "desk", "correlation_id": corr or key, "key": key}
    body["sig"] = sign(KEYS[key].encode(), verb, canonical_body(body))
    await client.publish(f"callbridge/lab/cmd/{verb}", orjson.dumps(body), qos=1)


async def test_a_key_acts_only_for_its_hotlines(keyed_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = keyed_lab
    caller, agent = await lab.answered_call("12345", caller="13700000030")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    replies: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V311, timeout=10) as client:
        await client.subscribe("callbridge/lab/reply/desk", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                reply = orjson.loads(bytes(m.payload))  # type: ignore[arg-type]
                replies.setdefault(reply["correlation_id"], reply)  # the first reply of each request

        task = asyncio.create_task(pump())
        for key in ("desk-110", "desk-12345"):
            body = {"call_id": call_id, "agent": agent_endpoint(agent), "to_hotline": "110", "category": "police"}
            await send(client, "transfer", body, key)
            await lab.until(lambda k=key: k in replies, 10)  # type: ignore[misc]
        for key in ("desk-119", "desk-110"):  # status: a key sees the transfers of its hotlines only
            await send(client, "status", {}, key, corr=f"status-{key}")
            await lab.until(lambda k=key: f"status-{k}" in replies, 10)  # type: ignore[misc]
        task.cancel()
    assert replies["status-desk-119"]["result"]["transfers"] == []
    assert [t["to_hotline"] for t in replies["status-desk-110"]["result"]["transfers"]] == ["110"]
    assert replies["desk-110"]["ok"] is False and replies["desk-110"]["error"]["code"] == "forbidden"
    assert "12345" in replies["desk-110"]["error"]["message"]
    assert replies["desk-12345"]["ok"] is True and replies["desk-12345"]["status"] == "accepted"
