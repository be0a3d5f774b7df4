"""The console's sign-in and actions go through the MQTT command processor: the same keys, roles, scopes and
strict models (the bus/idents alphabets). A real web server over HTTP; the handler behind the processor only
records what reached it (the engine's own checks are in tests/web/test_console_e2e.py)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from console_client import ConsoleClient

from callbridge.bus.commands import Command, CommandProcessor
from callbridge.bus.principals import KeyEntry
from callbridge.bus.topics import Topics
from callbridge.dialplan import load_dialplan
from callbridge.store.live import LiveBoard
from callbridge.web.console import Console
from callbridge.web.server import WebServer

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {k: secrets.token_hex(16) for k in ("desk-12345", "desk-110", "sup")}
KEYS = {
    "desk-12345": KeyEntry(id="desk-12345", secret=SECRETS["desk-12345"], roles=("agent",), hotlines=("12345",)),
    "desk-110": KeyEntry(id="desk-110", secret=SECRETS["desk-110"], roles=("agent",), hotlines=("110",),
                         agents=("agent2101",)),
    "sup": KeyEntry(id="sup", secret=SECRETS["sup"], roles=("agent", "supervisor"), hotlines=("*",)),
}  # fmt: skip


@dataclass
class Recorder:
    seen: list[Command] = field(default_factory=list)

    async def handle(self, cmd: Command) -> dict[str, Any]:
        self.seen.append(cmd)
        return {"handled": cmd.verb}


@dataclass
class Site:
    base: str
    handler: Recorder
    server: WebServer

    def desk(
        self, key: str, agent: str, hotline: str, role: str = "agent", secret: str | None = None
    ) -> dict[str, Any]:
        return {"key": key, "secret": SECRETS[key] if secret is None else secret, "agent": agent,
                "hotline": hotline, "role": role}  # fmt: skip


async def serve(keys: dict[str, KeyEntry], *, require: bool, token: str | None = None) -> tuple[WebServer, Recorder]:
    handler = Recorder()
    plan = load_dialplan(ROOT / "dialplans")
    processor = CommandProcessor(handler, Topics("lab"), keys=keys, require_signature=require)
    console = Console(processor, plan=lambda: plan, mode=lambda: "normal", clock=time.time, lab_token=token)
    server = WebServer(None, LiveBoard(["12345", "110"]), token=token, console=console)
    await server.start()
    return server, handler


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    server, handler = await serve(KEYS, require=True)
    try:
        yield Site(server.url, handler, server)
    finally:
        await server.stop()


async def test_sign_in_is_checked_by_the_command_processor(site: Site) -> None:
    cases = [
        (site.desk("desk-12345", "agent1001", "12345", secret="x" * 32), 401, "bad_signature"),
        ({**site.desk("desk-12345", "agent1001", "12345"), "key": "nobody"}, 401, "bad_signature"),
        (site.desk("desk-12345", "agent1001", "110"), 403, None),  # the key does not cover 110
        (site.desk("desk-12345", "agent1001", "12345", role="supervisor"), 403, "forbidden"),  # role not granted
        (site.desk("desk-110", "agent2102", "110"), 403, "forbidden"),  # may not speak for agent2102
        (site.desk("desk-12345", "agent 1001", "12345"), 400, None),  # not an agent id
        (site.desk("desk-12345", "agent1001", "12a45"), 400, None),  # not a hotline
        ({"agent": "agent1001", "hotline": "12345"}, 401, None),  # keys configured: no key, no entry
    ]
    for form, status, code in cases:
        got, reply = await ConsoleClient(site.base).login(form)
        assert got == status, (form, reply)
        if code is not None:
            assert reply["error"]["code"] == code, (form, reply)
    # every refused sign-in that got as far as the processor was refused there: nothing reached the handler
    assert site.handler.seen == []
    ok, me = await ConsoleClient(site.base).login(site.desk("desk-110", "agent2101", "110"))
    assert ok == 200 and me["agent"] == "agent2101" and [d["to_hotline"] for d in me["destinations"]] == ["12345"]
    assert [c.verb for c in site.handler.seen] == ["status"] and site.handler.seen[0].principal.id == "desk-110"


async def test_actions_carry_the_sessions_role_agent_and_key_and_every_value_is_validated(site: Site) -> None:
    desk = ConsoleClient(site.base)
    assert (await desk.act("transfer", {"call_id": "1790000000.1", "to_hotline": "110"}))[0] == 401  # not signed in
    assert (await desk.login(site.desk("desk-12345", "agent1001", "12345")))[0] == 200
    site.handler.seen.clear()
    # what the page says about who it is does not count: role, agent and key come from the session
    status, reply = await desk.act("transfer", {"call_id": "1790000000.1", "to_hotline": "110", "ticket": "JJ-1",
                                                "role": "supervisor", "agent": "agent9999", "key": "sup"})  # fmt: skip
    assert status == 200 and reply["result"] == {"handled": "transfer"}, reply
    cmd = site.handler.seen[-1]
    assert (cmd.body.role, cmd.body.agent, cmd.principal.id, cmd.signed) == ("agent", "agent1001", "desk-12345", True)
    # the same strict models as MQTT: a ticket, a call id or a hotline outside its alphabet never reaches the handler
    bad = [
        ("transfer", {"call_id": "1790000000.1", "to_hotline": "110", "ticket": "JJ 1"}, "ticket"),
        ("transfer", {"call_id": "../1", "to_hotline": "110"}, "call_id"),
        ("transfer", {"call_id": "1790000000.1", "to_hotline": "110/#"}, "to_hotline"),
        ("set_priority", {"call_id": "1790000000.1", "priority": "99"}, "priority"),
        ("handover_feedback", {"transfer_id": "x1", "outcome": "lost"}, "outcome"),
        ("transfer", {"call_id": "1790000000.1", "to_hotline": "110", "summary": "a\x85b"}, "summary"),
    ]
    for verb, body, loc in bad:
        status, reply = await desk.act(verb, body)
        assert status == 400 and reply["error"]["code"] == "invalid", (verb, body, reply)
        assert any(d["loc"] == loc for d in reply["error"]["details"]), reply
    # the same roles: an agent desk may not switch the mode
    status, reply = await desk.act("set_mode", {"mode": "surge"})
    assert status == 403 and reply["error"]["code"] == "forbidden", reply
    assert (await desk.act("reload", {}))[0] == 404  # not a console verb
    assert (await desk.request("POST", "/cmd/status", {}, headers={"X-Console": "0"}))[0] == 403  # no cross-site form
    assert [c.verb for c in site.handler.seen] == ["transfer"]


async def test_a_supervisor_desk_may_switch_the_mode(site: Site) -> None:
    sup = ConsoleClient(site.base)
    assert (await sup.login(site.desk("sup", "agent2191", "110", role="supervisor")))[0] == 200
    status, reply = await sup.act("set_mode", {"mode": "surge", "reason": "storm"})
    assert status == 200, reply
    cmd = site.handler.seen[-1]
    assert (cmd.verb, cmd.body.role, cmd.body.mode, cmd.principal.hotlines) == ("set_mode", "supervisor", "surge", None)


async def test_pages_and_the_rest_of_the_server() -> None:
    server, _handler = await serve({}, require=False, token="lab-token-0123456789")
    try:
        client = ConsoleClient(server.url)
        assert (await client.login({"agent": "agent1001", "hotline": "12345", "secret": "wrong"}))[0] == 401
        status, me = await client.login({"agent": "agent1001", "hotline": "12345", "secret": "lab-token-0123456789"})
        assert status == 200 and me["role"] == "agent"  # a lab: no keys, unsigned commands allowed, the web token
        status, view = await client.request("GET", "/view")
        assert status == 200 and view["call"] is None and view["mode"] == "normal"
        assert [d["shortcut"] for d in view["destinations"]][:3] == ["1", "2", "3"]
    finally:
        await server.stop()
