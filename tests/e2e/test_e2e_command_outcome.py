"""A command's reply means what it says: ``accepted`` first, then the execution result on the requester's own
correlation data — ``executing`` once the PBX took the actions, ``failed`` with the reason when AMI did not
(real mosquitto, simulator PBX)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.testing.mosquitto import Mosquitto
from tests.e2e.conftest import Lab, agent_endpoint
from tests.e2e.mqtt_lab import mqtt_lab_on_mosquitto

pytestmark = pytest.mark.mosquitto


@pytest.fixture
async def mqtt_lab(tmp_path: Path) -> Any:
    async with mqtt_lab_on_mosquitto(tmp_path) as (lab, broker):
        assert lab.app.publisher is not None and lab.app.command_server is not None
        async with asyncio.timeout(10):
            await lab.app.publisher.wait_connected()
            await lab.app.command_server.wait_subscribed()
        yield lab, broker


@contextlib.asynccontextmanager
async def desk(broker: Mosquitto) -> AsyncIterator[tuple[aiomqtt.Client, list[tuple[bytes, dict[str, Any]]]]]:
    """A desk client: replies on ``desk/replies`` as (correlation data, body), in arrival order."""
    replies: list[tuple[bytes, dict[str, Any]]] = []
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:
        await client.subscribe("desk/replies", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                replies.append((m.properties.CorrelationData, orjson.loads(bytes(m.payload))))  # type: ignore[union-attr,arg-type]

        task = asyncio.create_task(pump())
        try:
            yield client, replies
        finally:
            task.cancel()


async def request(client: aiomqtt.Client, verb: str, body: dict[str, Any], correlation: bytes) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = "desk/replies"
    props.CorrelationData = correlation
    await client.publish(f"callbridge/lab/cmd/{verb}", orjson.dumps(body), qos=1, properties=props)


async def test_transfer_reply_accepted_then_executing_on_the_same_correlation(mqtt_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = mqtt_lab
    caller, agent = await lab.answered_call("12345", caller="13700000020")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    async with desk(broker) as (client, replies):
        body = {"call_id": call_id, "agent": agent_endpoint(agent), "to_hotline": "110", "category": "police"}
        await request(client, "transfer", body, b"xfer-1")
        await lab.until(lambda: len(replies) >= 2, 10, label="accepted and the execution result")
        await asyncio.sleep(0.2)  # nothing else follows
    assert [c for c, _ in replies] == [b"xfer-1", b"xfer-1"]
    first, final = replies[0][1], replies[1][1]
    assert first["ok"] is True and first["status"] == "accepted" and first["final"] is False
    assert final["ok"] is True and final["status"] == "executing" and final["final"] is True
    assert final["result"]["transfer_id"] == first["result"]["transfer_id"]
    assert final["result"]["state"] in ("routing", "ringing", "answered")
    assert len(replies) == 2


async def test_transfer_reply_failed_with_the_reason_when_ami_is_gone(mqtt_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = mqtt_lab
    caller, agent = await lab.answered_call("12345", caller="13700000021")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.ami is not None
    lab.sim.stall(3.0)  # the PBX does not answer logins for a while: the daemon stays disconnected
    lab.sim.drop_connections()
    await lab.until(lambda: not lab.app.ami.connected, 5, label="AMI lost")  # type: ignore[union-attr]
    async with desk(broker) as (client, replies):
        body = {"call_id": call_id, "agent": agent_endpoint(agent), "to_hotline": "110", "category": "police"}
        await request(client, "transfer", body, b"xfer-2")
        await lab.until(lambda: len(replies) >= 2, 10, label="accepted and the execution result")
    first, final = replies[0][1], replies[1][1]
    assert [c for c, _ in replies] == [b"xfer-2", b"xfer-2"]
    assert first["status"] == "accepted" and first["ok"] is True  # authorised: the actions were attempted
    assert final["ok"] is False and final["status"] == "failed" and final["final"] is True
    assert final["error"]["code"] == "ami_unavailable" and final["result"]["state"] == "failed"


async def test_a_refused_or_read_only_command_gets_one_final_reply(mqtt_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = mqtt_lab
    async with desk(broker) as (client, replies):
        await request(client, "transfer", {"call_id": "nope.1", "agent": "agent1001", "to_hotline": "110"}, b"r-1")
        await request(client, "status", {}, b"s-1")
        await lab.until(lambda: len(replies) >= 2, 10)
        await asyncio.sleep(0.2)
    by_corr = dict(replies)
    assert len(replies) == 2
    assert by_corr[b"r-1"]["status"] == "refused" and by_corr[b"r-1"]["final"] is True
    assert by_corr[b"r-1"]["error"]["code"] == "unknown_call"
    assert by_corr[b"s-1"]["status"] == "done" and by_corr[b"s-1"]["ok"] is True
