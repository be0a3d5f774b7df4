"""``Simulator``: the PBX simulator embedded in tests and the demo, or run by ``callbridge sim``.

    sim = Simulator(lab_config(), users=[AmiUser("callbridge", secret)])
    port = await sim.start()          # AMI on 127.0.0.1:<port>
    chan = sim.place_call("13800138000", "4008000300")
    ...
    await sim.stop()

One asyncio task drives the single scheduler; simulated time runs ``time_scale`` times real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from callbridge.sim import control
from callbridge.sim.actions import CALL_ACTIONS, Handler
from callbridge.sim.actions_info import INFO_ACTIONS
from callbridge.sim.channels import Channel
from callbridge.sim.clock import Scheduler
from callbridge.sim.config import SimConfig, lab_config
from callbridge.sim.control import sim_control
from callbridge.sim.dialplan import parse_extensions
from callbridge.sim.endpoints import Endpoints
from callbridge.sim.pbx import Pbx
from callbridge.sim.queues import Member
from callbridge.sim.server import AmiServer, AmiUser
from callbridge.sim.world import Event, World

log = structlog.get_logger("callbridge.sim")


class Simulator:
    def __init__(self, config: SimConfig | None = None, *, users: list[AmiUser] | None = None,
                 login_fail_delay: float | None = None, manual_clock: bool = False) -> None:
        self.config = config or lab_config()
        self.time_scale = self.config.time_scale
        self._users = users
        self._login_fail_delay = login_fail_delay
        self._loop_t0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._driver: asyncio.Task[None] | None = None
        self.server: AmiServer | None = None
        self.handlers: dict[str, Handler] = {**CALL_ACTIONS, **INFO_ACTIONS, "simcontrol": sim_control}
        self._listeners: list[Callable[[Event], None]] = []
        # Manual clock: simulated time moves only through advance() (deterministic replays, fast tests).
        self.manual_clock = manual_clock
        self.errors: list[BaseException] = []
        self._build()

    # --- state ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.started_at = time.time()
        use_clock = self._loop is not None and not self.manual_clock
        self.sched = Scheduler(clock=self._clock if use_clock else None)
        self.sched.on_new_deadline = self._poke
        self.world = World(self.sched, int(self.started_at), self.config.counters)
        self.endpoints = Endpoints(self.config.endpoints())
        self.pbx = Pbx(self.world, parse_extensions(self.config.dialplan_text()), self.endpoints)
        for q in self.config.queues:
            queue = self.pbx.queues.define(q.name, q.strategy, q.timeout, q.retry)
            for interface in q.members:
                ep = self.endpoints.get(interface.split("/", 1)[-1])
                queue.members.append(Member(interface, ep.member_name if ep else interface))
        self.world.subscribe(self._on_event)
        self.world.silent = self._silent

    def _clock(self) -> float:
        assert self._loop is not None
        return (self._loop.time() - self._loop_t0) * self.time_scale

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _silent(self) -> bool:
        return not self._listeners and (self.server is None or not self.server.sessions)

    def _on_event(self, event: Event) -> None:
        if self.server is not None:
            self.server.broadcast(event)
        for listener in list(self._listeners):
            listener(event)

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """In-process event tap (tests, demo narration): ``listener((name, privilege, headers))``."""
        self._listeners.append(listener)

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._loop = asyncio.get_running_loop()
        self._loop_t0 = self._loop.time()
        if not self.manual_clock:
            self.sched.clock = self._clock
        self._wake = asyncio.Event()
        users = self._users
        if users is None:
            users = [AmiUser(u.name, u.resolve_secret(), frozenset(u.read), frozenset(u.write))
                     for u in self.config.ami.users]
        delay = self._login_fail_delay if self._login_fail_delay is not None else self.config.ami.login_fail_delay
        self.server = AmiServer(self, users, delay)
        await self.server.start(host, port)
        if not self.manual_clock:
            self._driver = asyncio.create_task(self._drive(), name="sim-scheduler")
        return self.port

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        if self.server is not None:
            await self.server.stop()

    async def _drive(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                self.sched.run_due(self._clock())
            except Exception as exc:  # a simulator bug must be visible, not kill the PBX
                log.exception("sim.timer_failed")
                self.errors.append(exc)
            deadline = self.sched.next_deadline()
            if deadline is None:
                await self._wake.wait()
                continue
            delay = (deadline - self._clock()) / self.time_scale
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def advance(self, seconds: float) -> None:
        """Manual clock: run every timer due within ``seconds`` of simulated time, yielding for I/O."""
        await self.advance_to(self.sched.now + seconds)

    async def advance_to(self, when: float) -> None:
        sched = self.sched
        while True:
            await asyncio.sleep(0)
            deadline = sched.next_deadline()
            if deadline is None or deadline > when:
                break
            try:
                sched.run_due(deadline)
            except Exception as exc:
                log.exception("sim.timer_failed")
                self.errors.append(exc)
        sched.run_due(when)
        await asyncio.sleep(0)

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for a span of simulated time (tests using ``time_scale``)."""
        await asyncio.sleep(sim_seconds / self.time_scale)

    def rebuild(self) -> None:
        """Fresh state after a restart: no channels, no bridges, queues without callers."""
        self.world.unsubscribe(self._on_event)
        self.sched.clear()  # timers of the old PBX must not touch the new one
        self._build()

    # --- snapshots for assertions ---------------------------------------------------------------
    def channels(self) -> list[str]:
        return list(self.world.channels)

    def channel(self, name: str | Channel) -> Channel | None:
        return name if isinstance(name, Channel) else self.world.find(name)

    def bridged_with(self, channel: str | Channel) -> list[str]:
        chan = self.channel(channel)
        bridge = chan.bridge if chan is not None else None
        members = getattr(bridge, "members", [])
        return [m.name for m in members if m is not chan]

    def queue_order(self, queue: str) -> list[str]:
        q = self.pbx.queues.queues.get(queue)
        return [e.chan.name for e in q.entries] if q is not None else []

    def channel_vars(self, channel: str | Channel) -> dict[str, str]:
        chan = self.channel(channel)
        if chan is None:
            return {}
        return {k: v for k, v in chan.vars.items() if not k.startswith("__")}

    def channels_of(self, endpoint: str) -> list[Channel]:
        prefix = f"PJSIP/{endpoint}-"
        return [c for c in self.world.channels.values() if c.name.startswith(prefix)]

    # --- driving calls and faults (see callbridge.sim.control) ----------------------------------
    def place_call(self, caller_num: str, did: str, name: str | None = None, *, hangup_after: float | None = None,
                   variables: dict[str, str] | None = None) -> Channel:
        """An inbound carrier call to ``did``; returns its channel (runs the inbound context)."""
        return control.place_call(self, caller_num, did, name, hangup_after=hangup_after, variables=variables)

    def caller_hangup(self, channel: str | Channel) -> None:
        """The far end of ``channel`` hangs up (BYE)."""
        control.caller_hangup(self, channel)

    def hangup(self, channel: str | Channel, cause: int = 16) -> None:
        control.hangup(self, channel, cause)

    def agent_press(self, agent: str, digits: str, duration_ms: int = 120, gap: float = 0.3) -> None:
        """The agent's phone sends ``digits`` (DTMFBegin/DTMFEnd on its channel, relayed over the bridge)."""
        control.agent_press(self, agent, digits, duration_ms, gap)

    def set_trunk(self, name: str, state: str) -> None:
        """Trunk ``hotline-110`` (or ``110``): up/down/busy/congestion/full/noanswer/unreachable."""
        control.set_trunk(self, name, state)

    def set_agent(self, agent: str, behaviour: str, **timings: float | None) -> None:
        """Agent ``agent1001`` (or ``1001``): answer/busy/noanswer/dnd/down; timings ring_after=… answer_after=…"""
        control.set_agent(self, agent, behaviour, **timings)

    def drop_connections(self) -> None:
        control.drop_connections(self)

    def stall(self, seconds: float) -> None:
        control.stall(self, seconds)

    def restart(self, shutdown_delay: float = 1.1, boot_time: float = 1.5) -> None:
        """``core restart now``: channels hung up, Shutdown, connections closed, fresh state; logins
        during the next ``boot_time`` simulated seconds get FullyBooted only when boot ends."""
        control.restart(self, shutdown_delay, boot_time)

    def emit_malformed(self) -> None:
        control.emit_malformed(self)
