"""The console's lab: the PBX simulator, a real mosquitto, and the daemon with its records, bus and web server,
plus a command-key file (secrets generated per run) for a 12345 desk, a 110 desk and a site-wide supervisor.

110 is served by this PBX's own agents (no trunk to a remote 110 centre) and its queue has one phone (agent2101,
answering after 1.5 s: time for the screen pop to be seen first);
the 110 expert seat (agent2191) is the supervisor's endpoint, a member of a 110 queue; in the 12345 → 120
three-way hand-over the agent stays until it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from callbridge.app import App
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.conftest import SECRET, Lab, copy_dialplans, sim_config, sim_phone_context

SUPERVISOR = "agent2191"
ANSWER_AFTER_110 = 1.5


@dataclass(frozen=True)
class DeskKey:
    key: str
    secret: str
    hotline: str
    agent: str = ""
    role: str = "agent"

    def login(self, agent: str | None = None, lang: str = "zh") -> dict[str, Any]:
        return {"key": self.key, "secret": self.secret, "hotline": self.hotline, "agent": agent or self.agent,
                "role": self.role, "lang": lang}  # fmt: skip


@dataclass
class ConsoleLab:
    lab: Lab
    broker: Mosquitto
    base: str
    desks: dict[str, DeskKey]
    #: (wall-clock arrival, event) of every event the daemon emitted
    arrivals: list[tuple[float, Any]]
    #: the callers' channels placed by :func:`answered_call`, in order
    callers: list[str] = field(default_factory=list)

    @property
    def app(self) -> App:
        return self.lab.app


def write_keys(path: Path) -> dict[str, DeskKey]:
    desks = {
        "12345": DeskKey("desk-12345", secrets.token_hex(16), "12345"),
        "110": DeskKey("desk-110", secrets.token_hex(16), "110", "agent2101"),
        "sup": DeskKey("sup-city", secrets.token_hex(16), "110", SUPERVISOR, "supervisor"),
    }
    keys = [
        {"id": "desk-12345", "secret": desks["12345"].secret, "roles": ["agent"], "hotlines": ["12345"]},
        {"id": "desk-110", "secret": desks["110"].secret, "roles": ["agent"], "hotlines": ["110"],
         "agents": ["agent2101"]},
        {"id": "sup-city", "secret": desks["sup"].secret, "roles": ["agent", "supervisor"], "hotlines": ["*"]},
    ]  # fmt: skip
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")
    path.chmod(0o600)
    return desks


@contextlib.asynccontextmanager
async def console_lab(tmp_path: Path) -> AsyncIterator[ConsoleLab]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    dialplans = copy_dialplans(tmp_path / "dialplans")
    q110 = dialplans / "110.yaml"
    text = q110.read_text(encoding="utf-8").replace("[PJSIP/agent2101, PJSIP/agent2102]", "[PJSIP/agent2101]")
    # 110 served by this PBX's own agents (its queue), not by the trunk to a remote 110 centre
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("outbound_trunk: t-110 "))
    q110.write_text(text + "\n", encoding="utf-8")
    # the 12345 agent stays in the three-way room with 120 until it presses "leave"
    d12345 = dialplans / "12345.yaml"
    text = d12345.read_text(encoding="utf-8")
    assert text.count("agent_leaves: true ") == 1
    d12345.write_text(text.replace("agent_leaves: true ", "agent_leaves: false"), encoding="utf-8")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    config = sim_config(plan, extensions)
    for agent in config.agents:
        if agent.name == "agent2101":
            agent.answer_after = ANSWER_AFTER_110
    desks = write_keys(tmp_path / "command-keys.json")
    sim = Simulator(config, users=[AmiUser("callbridge", SECRET)], login_fail_delay=0.05)
    port = await sim.start()
    with Mosquitto(tmp_path / "broker") as broker:
        settings = Settings.model_validate({
            "ami": {"host": "127.0.0.1", "port": port, "auth": "plain", "ping_interval": 1.0, "ping_timeout": 1.0},
            "mqtt": {"host": broker.host, "port": broker.port, "site": "lab",
                     "outbox_path": str(tmp_path / "outbox.db"), "reconnect_min_s": 0.05, "reconnect_max_s": 0.5,
                     "command_require_signature": True,
                     "command_keys_file": str(tmp_path / "command-keys.json")},
            "store": {"path": str(tmp_path / "records.sqlite3")},
            "web": {"host": "127.0.0.1", "port": 0},
        })  # fmt: skip
        events: list[Any] = []
        arrivals: list[tuple[float, Any]] = []

        def stamp(batch: Any) -> None:
            now = time.time()
            arrivals.extend((now, e) for e in batch)

        app = App(settings, ami_secret=SECRET, dialplan_path=dialplans, event_sinks=[events.extend, stamp],
                  enable_web=True, watch_interval=0.2)  # fmt: skip
        lab = Lab(sim, app, dialplans, events)
        try:
            async with asyncio.timeout(15):
                await app.start()
                assert app.ami is not None and app.publisher is not None and app.command_server is not None
                await app.ami.wait_connected(5)
                await app.publisher.wait_connected()
                await app.command_server.wait_subscribed()
            await lab.until(lambda: app.tracker.queues, label="resync saw the queues")
            yield ConsoleLab(lab, broker, app.web.url, desks, arrivals)
        finally:
            async with asyncio.timeout(15):
                await app.stop()
                await sim.stop()
            shutil.rmtree(dialplans, ignore_errors=True)


async def answered_call(cl: ConsoleLab, did: str, caller: str, name: str) -> str:
    """Place a call with a caller name and wait until an agent talks with it: the agent's endpoint."""
    chan = cl.lab.sim.place_call(caller, did, name)
    cl.callers.append(chan.name)

    def agent() -> str | None:
        peers = [p for p in cl.lab.sim.bridged_with(chan.name) if p.startswith("PJSIP/agent")]
        return peers[0] if peers else None

    agent_channel: str = await cl.lab.until(agent, label="agent answers")
    return agent_channel.split("/", 1)[1].rsplit("-", 1)[0]
