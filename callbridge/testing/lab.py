"""The end-to-end lab: the daemon (``callbridge.app.App``) beside the PBX simulator, over real TCP.

Shared by the end-to-end tests (``tests/e2e/conftest.py`` makes the ``lab`` fixture of it) and the fault
benchmark (``bench/faults.py``). The simulator runs the Asterisk configuration rendered from the example
dialplans (``callbridge.dialplan.render_asterisk``), so what the engine redirects into is what ops deploy.
The 110 queue's members are turned into SIP phones (agent2101/2102) so a 110 agent can press keys.
Needs a clone of the repository (the example dialplans under ``dialplans/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callbridge.app import App
from callbridge.bus.commands import VERBS, Command
from callbridge.demo.lab import sim_config as sim_config  # the demo's city is the lab's: one reading of the plan
from callbridge.demo.lab import sim_phone_context as sim_phone_context
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]  # the repository (its dialplans/)
SECRET = "e2e-not-a-real-secret"  # noqa: S105  # the simulator lab's AMI login, not a secret
CALLER = "13800138000"


@dataclass
class Lab:
    sim: Simulator
    app: App
    dialplans: Path
    events: list[DomainEvent] = field(default_factory=list)

    def of_type(self, type_: str) -> list[DomainEvent]:
        return [e for e in self.events if type_ == e.TYPE]

    async def until(self, what: Callable[[], Any], timeout: float = 8.0, label: str = "") -> Any:  # noqa: ASYNC109
        """Poll ``what`` until it returns something truthy (both sides run on this loop)."""
        async with asyncio.timeout(timeout):
            while True:
                value = what()
                if value:
                    return value
                await asyncio.sleep(0.02)
        raise AssertionError(label)  # pragma: no cover

    async def event(self, type_: str, timeout: float = 8.0, **match: Any) -> DomainEvent:  # noqa: ASYNC109
        def find() -> DomainEvent | None:
            for e in self.events:
                if type_ == e.TYPE and all(getattr(e, k, None) == v for k, v in match.items()):
                    return e
            return None

        try:
            found: DomainEvent = await self.until(find, timeout)
        except TimeoutError:
            seen = [(e.TYPE, getattr(e, "reason", "")) for e in self.events if not e.TYPE.startswith("call.")]
            raise AssertionError(f"no {type_} {match} within {timeout}s; engine events: {seen}") from None
        return found

    async def answered_call(self, did: str, caller: str = CALLER, agent_prefix: str = "PJSIP/agent") -> tuple[str, str]:
        """Place a call and wait until an agent talks with it: (caller channel, agent channel)."""
        chan = self.sim.place_call(caller, did)

        def agent() -> str | None:
            peers = [p for p in self.sim.bridged_with(chan.name) if p.startswith(agent_prefix)]
            return peers[0] if peers else None

        agent_channel: str = await self.until(agent, label="agent answers")
        # the tracker must have seen the bridge too before an agent presses keys
        await self.until(lambda: self.app.tracker.calls.get(chan.linkedid) is not None
                         and any(c.name == agent_channel for c in self.app.tracker.bridge_peers(chan.uniqueid)))
        return chan.name, agent_channel


def copy_dialplans(dest: Path) -> Path:
    dest.mkdir()
    for f in sorted((ROOT / "dialplans").glob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        # 110 agents become SIP phones so they can press one-key codes
        text = text.replace("[Local/2101@sim, Local/2102@sim]", "[PJSIP/agent2101, PJSIP/agent2102]")
        # the 110 expert seat is a SIP phone the priority test can keep busy
        text = text.replace("[Local/2191@sim]", "[PJSIP/agent2191]")
        # short timers and thresholds so scenarios run in seconds (the overflow rule is surge-only)
        text = text.replace("answer_timeout: 20 ", "answer_timeout: 5 ")
        text = text.replace("waiting_calls: 8 ", "waiting_calls: 2 ")
        text = text.replace("longest_wait: 60\n", "longest_wait: 600\n")
        text = text.replace("free_agents_at_most: 0\n", "free_agents_at_most: 3\n")
        text = text.replace("waiting_calls: 2\n      longest_wait: 20\n", "waiting_calls: 0\n      longest_wait: 500\n")
        (dest / f.name).write_text(text, encoding="utf-8")
    return dest


@contextlib.asynccontextmanager
async def open_lab(tmp_path: Path, mqtt: dict[str, Any] | None = None) -> AsyncIterator[Lab]:
    """Simulator + ``App`` on the example dialplans; ``mqtt`` = bus settings (None: no bus)."""
    dialplans = copy_dialplans(tmp_path / "dialplans")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    sim = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)], login_fail_delay=0.05)
    port = await sim.start()
    values: dict[str, Any] = {"ami": {"host": "127.0.0.1", "port": port, "auth": "plain", "ping_interval": 1.0,
                                      "ping_timeout": 1.0}}  # fmt: skip
    if mqtt is not None:
        values["mqtt"] = mqtt
    events: list[DomainEvent] = []
    app = App(Settings.model_validate(values), ami_secret=SECRET, dialplan_path=dialplans,
              event_sinks=[events.extend], enable_bus=mqtt is not None, watch_interval=0.2)  # fmt: skip
    lab = Lab(sim, app, dialplans, events)
    try:
        await started(lab)
        yield lab
    finally:
        async with asyncio.timeout(10):
            await app.stop()
            await sim.stop()
        assert not sim.errors, sim.errors
        shutil.rmtree(dialplans, ignore_errors=True)


async def started(lab: Lab) -> None:
    """Start the lab's daemon; return once AMI is logged in and the resync saw the queues."""
    async with asyncio.timeout(10):
        await lab.app.start()
        assert lab.app.ami is not None
        await lab.app.ami.wait_connected(5)
    await lab.until(lambda: lab.app.tracker.queues, label="resync saw the queues")


def command(verb: str, **body: Any) -> Command:
    return Command(verb=verb, body=VERBS[verb].model_validate(body), received_ts=0.0)


def agent_endpoint(channel: str) -> str:
    """``PJSIP/agent1001-00000004`` → ``agent1001``."""
    return channel.split("/", 1)[1].rsplit("-", 1)[0]
