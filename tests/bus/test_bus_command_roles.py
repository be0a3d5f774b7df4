"""Commands are authorised by role and key: strict models, roles per verb, per-sender keys with hotline scope,
and unsigned commands refused by default whenever the broker is not on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from bus_helpers import settings_for

from callbridge.bus.clients import CommandClient
from callbridge.bus.command_server import CommandServer
from callbridge.bus.commands import Command, CommandProcessor, IncomingCommand, canonical_body, sign
from callbridge.bus.config import BusSettings
from callbridge.bus.principals import load_keys
from callbridge.bus.topics import Topics
from callbridge.errors import CommandError, ConfigError
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto

TOPICS = Topics("lab")
KEYS_YAML = """
keys:
  - {id: desk-110, secret: desk-110-secret-0123, roles: [agent], hotlines: ["110"], agents: [agent2101]}
  - {id: sup-12345, secret: sup-12345-secret-0123, roles: [agent, supervisor], hotlines: ["12345"]}
  - {id: ops, secret: ops-secret-0123456789, roles: [ops, supervisor], hotlines: ["*"]}
"""
SECRETS = {"desk-110": b"desk-110-secret-0123", "sup-12345": b"sup-12345-secret-0123", "ops": b"ops-secret-0123456789"}


class Handler:
    def __init__(self) -> None:
        self.seen: list[Command] = []

    async def handle(self, cmd: Command) -> dict[str, Any]:
        self.seen.append(cmd)
        return {}


def signed(
    verb: str, body: dict[str, Any], key: str, secret: bytes | None = None, *, v5: bool = False
) -> IncomingCommand:
    secret = secret or SECRETS[key]
    if v5:
        payload = orjson.dumps(body)
        props = {"sig": sign(secret, verb, payload), "key": key}
        return IncomingCommand(topic=TOPICS.command(verb), payload=payload, user_properties=props)
    body = {**body, "key": key}
    signature = sign(secret, verb, canonical_body(body))
    return IncomingCommand(TOPICS.command(verb), orjson.dumps({**body, "sig": signature}))


def unsigned(verb: str, body: dict[str, Any]) -> IncomingCommand:
    return IncomingCommand(TOPICS.command(verb), orjson.dumps(body))


async def outcome(proc: CommandProcessor, msg: IncomingCommand) -> str:
    reply = await proc.process(msg)
    assert reply is not None
    body = orjson.loads(reply.payload)
    return "ok" if body["ok"] else str(body["error"]["code"])


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[CommandProcessor, Handler]:
    path = tmp_path / "keys.yaml"
    path.write_text(KEYS_YAML, encoding="utf-8")
    handler = Handler()
    return CommandProcessor(handler, TOPICS, keys=load_keys(path), require_signature=True), handler


async def test_models_are_strict_a_number_as_a_string_is_refused() -> None:
    proc = CommandProcessor(Handler(), TOPICS)
    body = {"call_id": "1700.1", "agent": "agent1001", "priority": "99"}
    assert await outcome(proc, unsigned("set_priority", body)) == "invalid"
    assert await outcome(proc, unsigned("set_priority", {**body, "priority": 99})) == "ok"
    assert await outcome(proc, unsigned("set_priority", {**body, "priority": 99.0})) == "invalid"
    assert await outcome(proc, unsigned("transfer", {"call_id": 1700, "agent": "a", "to_hotline": "110"})) == "invalid"


async def test_set_mode_and_reload_need_supervisor_or_ops() -> None:
    proc = CommandProcessor(Handler(), TOPICS)  # loopback lab: unsigned commands may claim a role
    assert await outcome(proc, unsigned("set_mode", {"mode": "night"})) == "forbidden"  # role agent by default
    assert await outcome(proc, unsigned("set_mode", {"mode": "night", "role": "agent"})) == "forbidden"
    assert await outcome(proc, unsigned("reload", {})) == "forbidden"
    assert await outcome(proc, unsigned("set_mode", {"mode": "night", "role": "supervisor"})) == "ok"
    assert await outcome(proc, unsigned("reload", {"role": "ops"})) == "ok"
    assert await outcome(proc, unsigned("transfer", {"call_id": "1.2", "agent": "a1", "to_hotline": "110",
                                                     "role": "ops"})) == "forbidden"  # fmt: skip
    assert await outcome(proc, unsigned("set_mode", {"mode": "night", "role": "boss"})) == "invalid"


@pytest.mark.parametrize("v5", [False, True])
async def test_the_key_decides_the_role_the_scope_and_the_agent(keyed: tuple[CommandProcessor, Handler],
                                                                 v5: bool) -> None:  # fmt: skip
    proc, handler = keyed
    mode_sup = {"mode": "night", "role": "supervisor"}
    assert await outcome(proc, signed("set_mode", mode_sup, "desk-110", v5=v5)) == "forbidden"  # not granted
    assert await outcome(proc, signed("set_mode", mode_sup, "sup-12345", v5=v5)) == "forbidden"  # one hotline only
    assert await outcome(proc, signed("set_mode", mode_sup, "ops", v5=v5)) == "ok"
    assert await outcome(proc, signed("set_mode", mode_sup, "ops", b"wrong-secret-xxxxxxxx", v5=v5)) == "bad_signature"
    assert await outcome(proc, signed("set_mode", mode_sup, "nobody", b"x" * 20, v5=v5)) == "bad_signature"
    xfer = {"call_id": "1700.1", "agent": "agent2101", "to_hotline": "119"}
    assert await outcome(proc, signed("transfer", xfer, "desk-110", v5=v5)) == "ok"
    assert handler.seen[-1].scope == frozenset({"110"})  # the engine checks the call's hotline against it
    other_agent = {**xfer, "agent": "PJSIP/agent2102"}
    assert await outcome(proc, signed("transfer", other_agent, "desk-110", v5=v5)) == "forbidden"
    assert await outcome(proc, unsigned("status", {})) == "unauthorised"  # signatures required
    assert [c.verb for c in handler.seen] == ["set_mode", "transfer"]


def test_unsigned_commands_are_refused_by_default_when_the_broker_is_not_on_loopback() -> None:
    assert BusSettings(host="192.0.2.10").signatures_required()
    assert BusSettings(host="mqtt.example.org").signatures_required()
    for host in ("127.0.0.1", "127.8.0.1", "::1", "localhost"):
        assert not BusSettings(host=host).signatures_required()
    assert not BusSettings(host="192.0.2.10", command_require_signature=False).signatures_required()  # explicit
    assert BusSettings(host="127.0.0.1", command_require_signature=True).signatures_required()
    server = CommandServer(BusSettings(host="192.0.2.10"), Handler())
    assert server.processor.require_signature is True


async def test_without_keys_a_remote_broker_refuses_every_command() -> None:
    server = CommandServer(BusSettings(host="192.0.2.10", site="lab"), Handler())
    assert await outcome(server.processor, unsigned("status", {})) == "unauthorised"
    msg = unsigned("status", {"sig": "0" * 64})
    assert await outcome(server.processor, msg) == "unauthorised"  # nothing to check a signature against


async def test_the_shared_secret_grants_only_its_configured_roles() -> None:
    secret = b"shared-secret-0123"
    proc = CommandProcessor(Handler(), TOPICS, secret=secret, require_signature=True)

    def shared(verb: str, body: dict[str, Any]) -> IncomingCommand:
        signature = sign(secret, verb, canonical_body(body))
        return IncomingCommand(TOPICS.command(verb), orjson.dumps({**body, "sig": signature}))

    assert await outcome(proc, shared("set_mode", {"mode": "night", "role": "supervisor"})) == "forbidden"
    assert await outcome(proc, shared("status", {})) == "ok"
    ops = CommandProcessor(Handler(), TOPICS, secret=secret, secret_roles=("agent", "ops"), require_signature=True)
    assert await outcome(ops, shared("reload", {"role": "ops"})) == "ok"


def test_a_bad_key_file_is_named_and_its_secrets_are_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {id: k1, secret: sixteen-chars-secret-x, roles: [boss]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_keys(path)
    text = "\n".join(map(str, caught.value.problems))
    assert str(path) in text and "sixteen-chars-secret-x" not in text


@pytest.mark.mosquitto
async def test_the_console_client_signs_with_its_key_through_a_real_broker(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    keys = tmp_path / "keys.yaml"
    keys.write_text(KEYS_YAML, encoding="utf-8")
    with Mosquitto(tmp_path / "broker") as broker:
        settings = settings_for(broker, tmp_path, command_keys_file=keys, command_require_signature=True)
        handler = Handler()
        server = CommandServer(settings, handler)
        task = asyncio.create_task(server.run())
        clients = [CommandClient(broker.host, broker.port, "5", "lab", key=k, secret=SECRETS.get(k, b"x" * 20))
                   for k in ("ops", "desk-110")] + [CommandClient(broker.host, broker.port, "5", "lab")]  # fmt: skip
        try:
            async with asyncio.timeout(10):
                await server.wait_subscribed()
            for c in clients:
                await c.start()
            ops, desk, anonymous = clients
            assert await ops.send("set_mode", mode="night", role="supervisor") == {}
            with pytest.raises(CommandError) as refused:
                await desk.send("set_mode", mode="night", role="supervisor")
            assert refused.value.code == "forbidden"
            with pytest.raises(CommandError) as unsigned_refused:
                await anonymous.send("status")
            assert unsigned_refused.value.code == "unauthorised"
            assert [c.principal.id for c in handler.seen] == ["ops"]
        finally:
            for c in clients:
                await c.stop()
            server.stop()
            async with asyncio.timeout(10):
                await task
