"""The daemon with its bus on a real mosquitto: the 110 software's screen pop and an MQTT 5 command."""

from __future__ import annotations

import asyncio
import contextlib
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
    async with mqtt_lab_on_mosquitto(tmp_path) as lab_and_broker:
        yield lab_and_broker


async def test_transfer_command_over_mqtt_and_screen_pop_before_answer(mqtt_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = mqtt_lab
    assert lab.app.publisher is not None and lab.app.command_server is not None
    async with asyncio.timeout(10):
        await lab.app.publisher.wait_connected()
        await lab.app.command_server.wait_subscribed()
    caller, agent = await lab.answered_call("12345", caller="13700000010")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    received: list[tuple[str, dict[str, Any], Any]] = []
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:
        await client.subscribe("callbridge/lab/events/110/#", qos=1)
        await client.subscribe("desk/replies/#", qos=1)
        await client.subscribe("callbridge/lab/state/#", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                received.append((m.topic.value, orjson.loads(bytes(m.payload)), m.properties))  # type: ignore[arg-type]

        task = asyncio.create_task(pump())
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "desk/replies/1"
        props.CorrelationData = b"req-1"
        body = {"call_id": call_id, "agent": agent_endpoint(agent), "to_hotline": "110", "category": "police",
                "ticket": "JD-2026-0001", "summary": "邻居争吵"}  # fmt: skip
        await client.publish("callbridge/lab/cmd/transfer", orjson.dumps(body), qos=1, properties=props)
        await lab.until(lambda: any(t.endswith("transfer/answered") for t, _, _ in received), 10)

        def hotline_state() -> dict[str, Any] | None:
            rows = [p for t, p, _ in received if t.endswith("/state/hotlines/12345")]
            return rows[-1] if rows and rows[-1]["agents_free"] + rows[-1]["agents_busy"] == 3 else None

        await lab.until(hotline_state, 5)  # retained state follows the queue members (1 s cadence)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    reply, outcome = [(p, props) for t, p, props in received if t == "desk/replies/1"]
    assert reply[0]["ok"] is True and reply[0]["result"]["to_hotline"] == "110" and reply[0]["status"] == "accepted"
    assert reply[1].CorrelationData == b"req-1" and outcome[1].CorrelationData == b"req-1"
    assert outcome[0]["status"] == "executing" and outcome[0]["final"] is True
    pops = [(t.rsplit("/", 2)[-2:], p) for t, p, _ in received if t.startswith("callbridge/lab/events/110/")]
    kinds = ["/".join(k) for k, _ in pops]
    assert kinds.index("transfer/requested") < kinds.index("transfer/answered")
    screen_pop = pops[kinds.index("transfer/requested")][1]
    states = {t.split("/state/", 1)[1]: p for t, p, _ in received if "/state/" in t}
    assert states["mode"]["mode"] == "normal"  # retained state topics, seen by a late subscriber
    assert states["queues/q-110"]["hotline"] == "110"
    assert screen_pop["data"]["caller_num"] == "13700000010" and screen_pop["data"]["ticket"] == "JD-2026-0001"
    assert screen_pop["data"]["summary"] == "邻居争吵" and screen_pop["specversion"] == "1.0"


async def test_set_priority_over_mqtt_moves_a_waiting_caller_ahead(mqtt_lab: tuple[Lab, Mosquitto]) -> None:
    lab, broker = mqtt_lab
    assert lab.app.publisher is not None and lab.app.command_server is not None
    async with asyncio.timeout(10):
        await lab.app.publisher.wait_connected()
        await lab.app.command_server.wait_subscribed()
    for agent in ("agent1001", "agent1002", "agent1003"):
        lab.sim.set_agent(agent, "noanswer")  # every 12345 seat rings without answering: callers wait
    first = lab.sim.place_call("13600000001", "12345")
    second = lab.sim.place_call("13600000002", "12345")
    await lab.until(lambda: lab.sim.queue_order("q-12345") == [first.name, second.name])
    await lab.until(lambda: second.name in {c.channel for q in lab.app.tracker.queues.values()
                                           for c in q.callers.values()})  # fmt: skip
    received: list[tuple[str, dict[str, Any], Any]] = []
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as client:
        await client.subscribe("callbridge/lab/events/12345/#", qos=1)
        await client.subscribe("desk/replies/#", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                received.append((m.topic.value, orjson.loads(bytes(m.payload)), m.properties))  # type: ignore[arg-type]

        task = asyncio.create_task(pump())
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "desk/replies/prio"
        props.CorrelationData = b"prio-1"
        body = {"call_id": second.linkedid, "agent": "PJSIP/agent1001", "priority": 50, "reason": "elderly caller"}
        await client.publish("callbridge/lab/cmd/set_priority", orjson.dumps(body), qos=1, properties=props)
        await lab.until(lambda: any(t == "desk/replies/prio" for t, _, _ in received), 10)
        await lab.until(lambda: any(t.endswith("queue/priority_set") for t, _, _ in received), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    [(reply, reply_props)] = [(p, pr) for t, p, pr in received if t == "desk/replies/prio"]
    assert reply["ok"] is True and reply["result"]["queue"] == "q-12345" and reply_props.CorrelationData == b"prio-1"
    # PBX side: QueueChangePriorityCaller with Immediate moved the raised caller to the head of the queue
    assert await lab.until(lambda: lab.sim.queue_order("q-12345") == [second.name, first.name])
    [event] = [p for t, p, _ in received if t.endswith("queue/priority_set")]
    assert event["data"]["priority"] == 50 and event["data"]["agent"] == "agent1001"
    assert event["data"]["caller_num"] == "13600000002" and event["data"]["reason"] == "elderly caller"
