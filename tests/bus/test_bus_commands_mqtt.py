"""Commands through a real mosquitto: MQTT 5 request/response, 3.1.1 fallback, refusals, shared groups,
and the last will when the daemon's process is killed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from bus_helpers import settings_for, subscribed
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.bus.command_server import CommandServer
from callbridge.bus.commands import Command, sign
from callbridge.bus.config import BusSettings
from callbridge.errors import CommandError
from callbridge.testing.mosquitto import Mosquitto

pytestmark = pytest.mark.mosquitto

HERE = Path(__file__).resolve().parent


class Engine:
    """Stands in for the engine's CommandHandler."""

    def __init__(self, name: str = "pbx-a") -> None:
        self.name = name
        self.seen: list[Command] = []

    async def handle(self, cmd: Command) -> dict[str, Any]:
        self.seen.append(cmd)
        call_id = getattr(cmd.body, "call_id", None)
        if call_id == "elsewhere":
            raise CommandError("not_on_this_pbx", f"{call_id} is not on {self.name}")
        if getattr(cmd.body, "agent", None) == "intruder":
            raise CommandError("unauthorised", "intruder is not party to the call")
        return {"accepted": True, "by": self.name, "call_id": call_id}


@contextlib.asynccontextmanager
async def serving(settings: BusSettings, engine: Engine) -> AsyncIterator[CommandServer]:
    server = CommandServer(settings, engine)
    task = asyncio.create_task(server.run())
    try:
        async with asyncio.timeout(10):
            await server.wait_subscribed()
        yield server
    finally:
        server.stop()
        async with asyncio.timeout(10):
            await task


def v5_request(response_topic: str, correlation: bytes, sig: str | None = None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    if sig is not None:
        props.UserProperty = [("sig", sig)]
    return props


TRANSFER = {"call_id": "1700.1", "agent": "agent1001", "to_hotline": "110", "mode": "attended"}


async def test_mqtt5_request_response_with_correlation_data(broker: Mosquitto, tmp_path: Path) -> None:
    engine = Engine()
    async with serving(settings_for(broker, tmp_path), engine), subscribed(broker, "desk/replies/#") as (
        desk,
        seen,
    ):
        for i, verb in enumerate(["transfer", "status"]):
            body = TRANSFER if verb == "transfer" else {}
            await desk.publish(
                f"callbridge/lab/cmd/{verb}", orjson.dumps(body), qos=1,
                properties=v5_request("desk/replies/7", f"req-{i}".encode()),
            )
        await seen.wait_until(lambda c: len(c.messages) >= 2)
    assert [orjson.loads(p)["verb"] for _, p, _ in seen.messages] == ["transfer", "status"]
    first = orjson.loads(seen.messages[0][1])
    assert first == {"ok": True, "verb": "transfer", "status": "done", "final": True,
                     "result": {"accepted": True, "by": "pbx-a", "call_id": "1700.1"}}  # fmt: skip
    assert [c.verb for c in engine.seen] == ["transfer", "status"]


async def test_correlation_data_is_echoed_as_a_property(broker: Mosquitto, tmp_path: Path) -> None:
    got: asyncio.Future[aiomqtt.Message] = asyncio.get_running_loop().create_future()
    async with serving(settings_for(broker, tmp_path), Engine()):
        client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
        async with asyncio.timeout(10), client:
            await client.subscribe("desk/r", qos=1)
            await client.publish(
                "callbridge/lab/cmd/transfer", orjson.dumps(TRANSFER), qos=1,
                properties=v5_request("desk/r", b"\x00\xffopaque"),
            )
            async for message in client.messages:
                got.set_result(message)
                break
    reply = got.result()
    assert reply.properties is not None
    assert reply.properties.CorrelationData == b"\x00\xffopaque"


async def test_mqtt311_client_gets_the_fallback_reply(broker: Mosquitto, tmp_path: Path) -> None:
    async with serving(settings_for(broker, tmp_path), Engine()), subscribed(
        broker, "callbridge/lab/reply/desk-7", v5=False
    ) as (desk, seen):
        await desk.publish(
            "callbridge/lab/cmd/cancel",
            orjson.dumps({"call_id": "1700.1", "agent": "agent1001", "reply_to": "desk-7", "correlation_id": "c-9"}),
            qos=1,
        )
        await seen.wait_until(lambda c: len(c.messages) >= 1)
    body = orjson.loads(seen.messages[0][1])
    assert body["ok"] is True and body["correlation_id"] == "c-9" and body["verb"] == "cancel"


async def test_bad_commands_get_coded_errors_and_the_server_keeps_serving(broker: Mosquitto, tmp_path: Path) -> None:
    secret = "s3cret"
    settings = settings_for(broker, tmp_path, command_secret=secret, command_require_signature=True)
    engine = Engine()
    raw = orjson.dumps(TRANSFER)
    cases: list[tuple[str, bytes, str | None]] = [
        ("transfer", b"{oops", None),
        ("teleport", raw, sign(secret.encode(), "teleport", raw)),
        ("transfer", orjson.dumps({**TRANSFER, "mode": "yell"}),
         sign(secret.encode(), "transfer", orjson.dumps({**TRANSFER, "mode": "yell"}))),
        ("transfer", raw, None),  # unsigned
        ("transfer", raw, "00" * 32),  # wrong signature
        ("transfer", orjson.dumps({**TRANSFER, "agent": "intruder"}),
         sign(secret.encode(), "transfer", orjson.dumps({**TRANSFER, "agent": "intruder"}))),
        ("transfer", raw, sign(secret.encode(), "transfer", raw)),  # finally a good one
    ]
    async with serving(settings, engine) as server, subscribed(broker, "desk/r/#") as (desk, seen):
        for i, (verb, payload, sig) in enumerate(cases):
            await desk.publish(
                f"callbridge/lab/cmd/{verb}", payload, qos=1, properties=v5_request(f"desk/r/{i}", b"%d" % i, sig)
            )
        await seen.wait_until(lambda c: len(c.messages) >= len(cases))
        assert server.connected
    replies = {t: orjson.loads(p) for t, p, _ in seen.messages}
    codes = [replies[f"desk/r/{i}"].get("error", {}).get("code") for i in range(len(cases))]
    assert codes == ["bad_json", "unknown_verb", "invalid", "unauthorised", "bad_signature", "unauthorised", None]
    assert replies[f"desk/r/{len(cases) - 1}"]["ok"] is True
    assert [c.body.agent for c in engine.seen] == ["intruder", "agent1001"]  # type: ignore[attr-defined]


async def test_shared_subscription_spreads_commands_and_each_is_answered_once(
    broker: Mosquitto, tmp_path: Path
) -> None:
    a, b = Engine("pbx-a"), Engine("pbx-b")
    common = {"command_shared_group": "callbridge-lab"}
    async with serving(settings_for(broker, tmp_path, client_id="a", **common), a), serving(
        settings_for(broker, tmp_path, client_id="b", **common), b
    ), subscribed(broker, "desk/r/#") as (desk, seen):
        for i in range(20):
            await desk.publish(
                "callbridge/lab/cmd/status", b"{}", qos=1, properties=v5_request(f"desk/r/{i}", b"%d" % i)
            )
        await seen.wait_until(lambda c: len(c.messages) >= 20)
        await asyncio.sleep(0.1)  # a second answer to any request would have arrived by now
    assert sorted(t for t, _, _ in seen.messages) == sorted(f"desk/r/{i}" for i in range(20))
    assert len(a.seen) + len(b.seen) == 20 and a.seen and b.seen


async def test_last_will_says_offline_when_the_process_is_killed(broker: Mosquitto, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "publisher_process.py"), broker.host, str(broker.port), str(tmp_path / "o.db"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while (line := await proc.stdout.readline()) != b"connected\n":  # log lines come first
                assert line, "the publisher process exited before connecting"
        async with subscribed(broker, "callbridge/lab/status") as (_, seen):
            await seen.wait_until(lambda c: len(c.messages) >= 1)
            assert seen.messages[0][1] == b"online"
            proc.send_signal(signal.SIGKILL)
            await seen.wait_until(lambda c: len(c.messages) >= 2)
        assert seen.messages[1][1] == b"offline"
        async with subscribed(broker, "callbridge/lab/status") as (_, late):
            await late.wait_until(lambda c: len(c.messages) >= 1)
        assert late.messages == [("callbridge/lab/status", b"offline", True)]  # retained for newcomers
    finally:
        if proc.returncode is None:
            proc.kill()
        async with asyncio.timeout(10):
            await proc.wait()
