"""Driving the simulator from outside: callers, agents' keys, fault injection.

The same operations are a Python API (methods of ``Simulator`` delegate here) and an AMI action
(``Action: SimControl`` / ``Command: trunk-down`` …) so another process can inject faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from callbridge.ami.framing import AmiMessage
from callbridge.sim.channels import RING, Channel
from callbridge.sim.endpoints import BEHAVIOURS
from callbridge.sim.replies import Reply, error, success

if TYPE_CHECKING:
    from callbridge.sim.simulator import Simulator


def place_call(sim: Simulator, caller_num: str, did: str, name: str | None = None, *,
               hangup_after: float | None = None, variables: dict[str, str] | None = None) -> Channel:
    """An inbound call from the carrier to ``did`` (lands in the inbound context, like trace 21)."""
    world = sim.world
    chan = world.new_channel(f"PJSIP/{sim.config.carrier}", sim.config.inbound_context, did, state=RING,
                             cid=(caller_num, name or caller_num))
    chan.endpoint = sim.config.carrier
    for key, value in (variables or {}).items():
        chan.vars[key] = value
    sim.pbx.start(chan)
    if hangup_after is not None:
        sim.sched.call_later(hangup_after, lambda: caller_hangup(sim, chan))
    return chan


def caller_hangup(sim: Simulator, channel: str | Channel) -> None:
    """The far end sends BYE: HangupRequest without cause; in a dialplan app Hangup cause 0 (trace 21)."""
    chan = sim.channel(channel)
    if chan is None or chan.hungup:
        return
    world = sim.world
    world.chan_event("HangupRequest", chan)
    bridged = chan.bridge is not None
    world.hangup(chan, 16 if bridged else 0, request="" if bridged else "soft")


def hangup(sim: Simulator, channel: str | Channel, cause: int = 16) -> None:
    chan = sim.channel(channel)
    if chan is not None:
        sim.world.hangup(chan, cause, request="hard")


def agent_press(sim: Simulator, agent: str, digits: str, duration_ms: int = 120, gap: float = 0.3) -> None:
    """The agent's phone sends RFC 4733 digits: DTMFBegin/DTMFEnd Direction Received (trace 18)."""
    chans = sim.channels_of(agent)
    if not chans:
        raise LookupError(f"agent {agent} has no active channel")
    chan = chans[-1]
    relay = sim.pbx.dtmf
    at = 0.0
    for digit in digits:
        def begin(d: str = digit) -> None:
            if not chan.hungup:
                relay.begin(chan, d)

        def end(d: str = digit) -> None:
            if not chan.hungup:
                relay.end(chan, d, duration_ms)

        sim.sched.call_later(at, begin)
        sim.sched.call_later(at + duration_ms / 1000.0, end)
        at += duration_ms / 1000.0 + gap


def _endpoint_name(sim: Simulator, name: str) -> str:
    if sim.endpoints.get(name) is not None:
        return name
    trunk = sim.endpoints.trunk_for(name)
    if trunk is not None:
        return trunk.name
    if sim.endpoints.get(f"agent{name}") is not None:
        return f"agent{name}"
    raise KeyError(f"no endpoint {name!r}")


def set_trunk(sim: Simulator, name: str, state: str) -> None:
    """``up`` (answers), ``down`` (unavailable), ``busy``, ``congestion``/``full``, ``noanswer``…"""
    mode = {"up": "answer", "full": "congestion"}.get(state, state)
    if mode not in BEHAVIOURS:
        raise ValueError(f"unknown trunk state {state!r}")
    sim.endpoints.set_behaviour(_endpoint_name(sim, name), mode)


def set_agent(sim: Simulator, agent: str, behaviour: str, **timings: float | None) -> None:
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown agent behaviour {behaviour!r}")
    sim.endpoints.set_behaviour(_endpoint_name(sim, agent), behaviour, **timings)

# --- faults -------------------------------------------------------------------------------------
def drop_connections(sim: Simulator) -> None:
    if sim.server is not None:
        sim.server.drop_all()


def stall(sim: Simulator, seconds: float) -> None:
    """Stop answering actions for ``seconds`` (real time); events keep flowing."""
    server = sim.server
    if server is None:
        return
    server.stalled.clear()
    asyncio.get_running_loop().call_later(seconds, server.stalled.set)


def emit_malformed(sim: Simulator) -> None:
    if sim.server is not None:
        sim.server.send_raw(b"this line is not an AMI header\r\n\r\n")


def restart(sim: Simulator, shutdown_delay: float = 1.1, boot_time: float = 1.5) -> None:
    """``core restart now``: SoftHangupRequest cause 4 on every channel, Shutdown, fresh state (trace 20)."""
    world = sim.world
    if sim.server is not None:
        sim.server.shutting_down = True
    for chan in list(world.channels.values()):
        world.chan_event("SoftHangupRequest", chan, [("Cause", "4")])
    # Channels running an application end first (cause unknown); bridged ones follow their peers.
    for chan in list(world.channels.values()):
        if chan.bridge is None:
            world.hangup(chan, 0, request="soft" if chan.app else "")
    for chan in list(world.channels.values()):
        world.hangup(chan, 16)

    def shutdown() -> None:
        world.emit("Shutdown", "system,all", [("Shutdown", "Cleanly"), ("Restart", "True")])
        drop_connections(sim)
        server = sim.server
        if server is not None:
            server.booted = False
            server.shutting_down = False
        sim.rebuild()
        if server is not None:
            sim.sched.call_later(boot_time, server.boot_finished)

    sim.sched.call_later(shutdown_delay, shutdown)


def sim_control(sim: Simulator, msg: AmiMessage) -> Reply:
    """``Action: SimControl`` — fault injection and call control for out-of-process tests."""
    cmd = msg.get("Command").strip().lower()
    command = _CONTROLS.get(cmd)
    if command is None:
        return error(f"Unknown SimControl command: {cmd}")
    try:
        reply = command(sim, msg)
    except (KeyError, LookupError, ValueError) as exc:
        return error(f"SimControl {cmd} failed: {exc}")
    return reply if isinstance(reply, Reply) else success(f"SimControl {cmd} done")


def _soon(sim: Simulator, fn: Callable[[], None]) -> None:
    sim.sched.soon(fn)


def _place_call(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = sim.place_call(msg.get("Caller"), msg.get("DID"), msg.get("Name") or None)
    return success("Call placed", ("Channel", chan.name))


#: SimControl's commands: each does its part; its reply is "<command> done" unless it returns its own Reply
_CONTROLS: dict[str, Callable[[Simulator, AmiMessage], object]] = {
    "trunk-down": lambda sim, msg: sim.set_trunk(msg.get("Trunk"), "down"),
    "trunk-up": lambda sim, msg: sim.set_trunk(msg.get("Trunk"), "up"),
    "trunk": lambda sim, msg: sim.set_trunk(msg.get("Trunk"), msg.get("State")),
    "agent": lambda sim, msg: sim.set_agent(msg.get("Agent"), msg.get("Behaviour")),
    "drop": lambda sim, _msg: _soon(sim, sim.drop_connections),
    "stall": lambda sim, msg: sim.stall(float(msg.get("Seconds") or 1)),
    "restart": lambda sim, _msg: sim.restart(),
    "malformed": lambda sim, _msg: _soon(sim, sim.emit_malformed),
    "place-call": _place_call,
    "agent-press": lambda sim, msg: sim.agent_press(msg.get("Agent"), msg.get("Digits")),
    "hangup": lambda sim, msg: sim.caller_hangup(msg.get("Channel")),
}
