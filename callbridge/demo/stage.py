"""What a demo step works with: the lab, waiting helpers, and the checks it records.

A step acts on the simulated PBX (callers dial, agents press keys, trunks fail), then records
:class:`Check` results: facts from the events a real MQTT subscriber received, and facts from the
PBX side (what the simulator's channels show). A check that times out fails; it never hangs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from callbridge.app import App
from callbridge.demo.lab import DemoLab, agent_endpoint
from callbridge.demo.watch import EventLog, Predicate, SeenEvent
from callbridge.sim.channels import Channel
from callbridge.sim.simulator import Simulator

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    ok: bool
    detail: str = ""  # in an operator's words: numbers, hotlines, agents — no channel or variable names
    internals: str = ""  # what the PBX shows (channels, variables, ids): printed with --verbose only


@dataclass
class StepOutcome:
    title: str
    checks: list[Check] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)

    def detail(self) -> str:
        if self.error:
            return self.error
        failed = [c for c in self.checks if not c.ok]
        shown = failed or self.checks
        return "; ".join(f"{c.label}: {c.detail}" if c.detail else c.label for c in shown)


@dataclass
class Stage:
    lab: DemoLab
    fast: bool
    say: Callable[[str, str], None]  # (english, 中文) narration
    outcome: StepOutcome = field(default_factory=lambda: StepOutcome(""))
    #: hotline → sentences a scene left on why that hotline missed answers (see :meth:`note`)
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def sim(self) -> Simulator:
        assert self.lab.sim is not None
        return self.lab.sim

    @property
    def app(self) -> App:
        assert self.lab.app is not None
        return self.lab.app

    @property
    def log(self) -> EventLog:
        return self.lab.log

    @property
    def timeout(self) -> float:
        return 10.0 if self.fast else 20.0

    async def pause(self, seconds: float) -> None:
        """Give a human time to read (skipped with ``--fast``)."""
        if not self.fast:
            await asyncio.sleep(seconds)

    def check(self, label: str, ok: bool, detail: str = "", internals: str = "") -> bool:
        self.outcome.checks.append(Check(label, bool(ok), detail, internals))
        return bool(ok)

    def note(self, hotline: str, why: str) -> None:
        """Why ``hotline``'s answer rate looks the way it will at the end of the day (shown under the KPIs)."""
        self.notes.setdefault(hotline, []).append(why)

    async def until(self, what: Callable[[], T | None], timeout: float | None = None) -> T | None:  # noqa: ASYNC109
        """Poll a PBX-side fact until it is truthy; ``None`` when it never became so."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.03)

    async def seen(self, type_: str, pred: Predicate | None = None, *, since: int = 0,
                   timeout: float | None = None) -> SeenEvent | None:  # noqa: ASYNC109
        return await self.log.wait_for(type_, pred, since=since, timeout=timeout or self.timeout)

    async def expect_event(self, label: str, type_: str, pred: Predicate | None = None, *, since: int = 0,
                           show: Callable[[SeenEvent], str] | None = None,
                           internals: Callable[[SeenEvent], str] | None = None) -> SeenEvent | None:
        ev = await self.seen(type_, pred, since=since)
        if ev is None:
            self.check(label, False, f"no {type_} seen on MQTT within {self.timeout:.0f}s")
        else:
            self.check(label, True, show(ev) if show else f"{type_} on {ev.topic}", internals(ev) if internals else "")
        return ev

    async def command(self, verb: str, **body: Any) -> dict[str, Any]:
        """A command over MQTT (``callbridge/<site>/cmd/<verb>``), as a supervisor's console sends it."""
        assert self.lab.commander is not None
        return await self.lab.commander.send(verb, timeout=self.timeout, **body)

    async def answered_call(self, caller: str, did: str = "12345", name: str | None = None,
                            agent_prefix: str = "PJSIP/agent") -> tuple[Channel, str] | None:
        """Place a call and wait until an agent talks with it (and the daemon has seen that too)."""
        chan = self.sim.place_call(caller, did, name)

        def agent() -> str | None:
            peers = [p for p in self.sim.bridged_with(chan.name) if p.startswith(agent_prefix)]
            return peers[0] if peers else None

        agent_channel = await self.until(agent)
        if agent_channel is None:
            self.check(f"an agent of {did} answers {caller}", False, "nobody answered")
            return None
        tracker = self.app.tracker
        seen = await self.until(lambda: tracker.calls.get(chan.linkedid) is not None and any(
            c.name == agent_channel for c in tracker.bridge_peers(chan.uniqueid)))  # fmt: skip
        if not seen:
            self.check("the daemon sees the answered call", False, "tracker never saw the bridge")
            return None
        return chan, agent_channel

    def peers_matching(self, channel: str, needle: str) -> list[str]:
        return [p for p in self.sim.bridged_with(channel) if needle in p]


def endpoint(channel: str) -> str:
    return agent_endpoint(channel)


def who(channel: str) -> str:
    """A channel as an operator names the party: ``PJSIP/agent1001-0000000a`` → ``agent 1001``,
    ``PJSIP/hotline-110-backup-0000000d`` → ``the 110 backup line``, ``PJSIP/carrier-…`` → ``a citizen``,
    ``Local/3001@…`` → ``remote seat 3001``."""
    tech, _, rest = channel.partition("/")
    if tech == "Local":
        return f"remote seat {rest.split('@', 1)[0]}"
    name = re.sub(r"-[0-9a-f]{6,}(;\d)?$", "", rest)
    if name.startswith("agent"):
        return f"agent {name.removeprefix('agent')}"
    if name.startswith("hotline-"):
        line = name.removeprefix("hotline-")
        return f"the {line.removesuffix('-backup')} {'backup' if line.endswith('-backup') else 'primary'} line"
    if name.startswith("carrier"):
        return "a citizen"
    return name
