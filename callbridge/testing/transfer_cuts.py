"""AMI cuts during each transfer kind (issue 17.4): the harness of ``tests/e2e/test_e2e_transfer_cuts.py``
and of the fault benchmark (``bench/faults.py``).

The AMI connection between the daemon and the simulator is dropped at a seeded random moment while the
transfer's actions are on their way or just ran (:class:`CutTrap` counts what the PBX executed and drops
the connections), then the transfer must settle in a state that is true of the PBX (:func:`settled`).
:func:`run_cuts` runs ``cuts`` of one kind in a :class:`~callbridge.testing.lab.Lab`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from callbridge.engine.transfer import TERMINAL, Transfer, TState
from callbridge.sim.replies import Reply
from callbridge.sim.simulator import Simulator
from callbridge.testing.lab import Lab, agent_endpoint, command

KINDS = ("attended", "complete", "cancel", "threeway")
#: the AMI actions that must never run twice for one transfer
ONCE = ("atxfer", "originate", "cancelatxfer", "hangup", "redirect")
#: where a cut falls: with the action (lost with the connection), right after it ran (its reply lost), later
MOMENTS = ("before", "after", "later")


class CutTrap:
    """Counts the actions the simulator executed, by (action, channel, context, exten), and can drop every
    AMI connection at the next armed action: ``before`` it runs (the action is lost) or ``after`` (the reply is)."""

    def __init__(self, sim: Simulator) -> None:
        self.seen: Counter[tuple[str, ...]] = Counter()
        self.armed: tuple[str, str] | None = None
        for name in ONCE:
            sim.handlers[name] = self._wrap(name, sim.handlers[name])

    def _wrap(self, name: str, original: Any) -> Any:
        def handler(sim: Simulator, msg: Any) -> Any:
            moment = self.armed[1] if self.armed is not None and self.armed[0] == name else None
            if moment is not None:
                self.armed = None
            if moment == "before":
                sim.drop_connections()
                return Reply(close=True)
            self.seen[(name, msg.get("Channel"), msg.get("Context"), msg.get("Exten"))] += 1
            reply = original(sim, msg)
            if moment == "after":
                sim.drop_connections()
            return reply

        return handler

    def twice(self) -> list[tuple[str, ...]]:
        return [key for key, n in self.seen.items() if n > 1]


def consultation_alive(lab: Lab, t: Transfer) -> bool:
    """The PBX still has the consultation leg and the caller is not with the agent (resumed)."""
    return bool(t.route_channel) and lab.sim.channel(t.route_channel) is not None and (
        t.agent_channel not in lab.sim.bridged_with(t.caller_channel)
    )


async def cut(lab: Lab, trap: CutTrap, action: str, moment: str, delay_s: float, send: Any) -> None:
    """Run ``send`` (the command) with a cut at ``moment`` of ``action``; wait for the reconnect and resync."""
    connected = len(lab.of_type("ami.connected"))
    trap.armed = (action, moment) if moment != "later" else None
    await send()
    if moment == "later":
        await asyncio.sleep(delay_s)
        lab.sim.drop_connections()
    await lab.until(lambda: len(lab.of_type("ami.connected")) > connected, timeout=10, label="reconnected")
    trap.armed = None
    assert lab.app.service is not None
    await lab.app.service.idle()


async def settled(lab: Lab, t: Transfer, kind: str) -> str:
    """Wait until the transfer is in a state that is true of the PBX; the state it settled in."""

    def ok() -> bool:
        if t.state in (TState.SENDING, TState.UNKNOWN, TState.REQUESTED):
            return False
        if t.state is TState.CONSULTING:  # resumed only if the PBX still has the consultation
            return consultation_alive(lab, t)
        if t.mode == "attended" and t.state in (TState.RINGING, TState.ANSWERED):
            # consulting (or completed), but not if the caller is back with the agent: the consultation is over
            return t.agent_channel not in lab.sim.bridged_with(t.caller_channel)
        return True

    try:
        await lab.until(ok, timeout=6)
    except TimeoutError:
        raise AssertionError(f"{kind}: transfer {t.id} left {t.state.value}; history {t.history}; "
                             f"caller with {lab.sim.bridged_with(t.caller_channel)}") from None  # fmt: skip
    if t.state is TState.FAILED:
        assert t.history[-1][3], f"failed without a reason: {t.history}"
    return t.state.value


async def end_call(lab: Lab, caller: str, t: Transfer) -> None:
    if lab.sim.channel(caller) is not None:
        lab.sim.hangup(caller)
    for leg in lab.sim.channels():  # the consultation, the agent, a three-way's legs: the next cut starts clean
        lab.sim.hangup(leg)
    try:
        await lab.until(lambda: t.state in TERMINAL, timeout=8)
    except TimeoutError:
        raise AssertionError(f"transfer {t.id} still {t.state.value} after the caller hung up: {t.history}; "
                             f"PBX channels {lab.sim.channels()}") from None  # fmt: skip


def transfer_of(lab: Lab, call_id: str) -> Transfer:
    [t] = [t for t in lab.app.engine.transfers.values() if t.call_id == call_id]
    return t


async def run_cuts(lab: Lab, kind: str, cuts: int) -> tuple[Counter[str], CutTrap]:
    """``cuts`` transfers of ``kind``, each with a cut (seeded moments); the settled states by moment, and
    the trap (what the PBX executed, and what it executed twice)."""
    rng = random.Random(f"17.4-{kind}")
    outcomes: Counter[str] = Counter()
    trap = CutTrap(lab.sim)
    for n in range(cuts):
        moment, delay = MOMENTS[n % 3], rng.uniform(0.0, 0.25)
        caller, agent = await lab.answered_call("110" if kind == "threeway" else "12345", caller=f"137000004{n:02d}")
        call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
        await one_cut(lab, trap, kind, {"call_id": call_id, "agent": agent_endpoint(agent)}, moment, delay, rng)
        t = transfer_of(lab, call_id)
        outcomes[f"{moment}:{await settled(lab, t, kind)}"] += 1
        await end_call(lab, caller, t)
    return outcomes, trap


async def one_cut(lab: Lab, trap: CutTrap, kind: str, who: dict[str, str], moment: str, delay: float,
                  rng: random.Random) -> None:  # fmt: skip
    """The command of ``kind`` for the call ``who`` names, with its cut."""
    service = lab.app.service
    assert service is not None

    def sending(verb: str, **body: str) -> Callable[[], Awaitable[object]]:
        return lambda: service.handle(command(verb, **who, **body))

    if kind == "threeway":
        action = rng.choice(["redirect", "originate"])
        await cut(lab, trap, action, moment, delay, sending("three_way", to_hotline="12345", category="non_police"))
    elif kind == "attended":
        await cut(lab, trap, "atxfer", moment, delay,
                  sending("transfer", to_hotline="119", mode="attended", category="fire"))  # fmt: skip
    else:
        await sending("transfer", to_hotline="119", mode="attended", category="fire")()
        t = transfer_of(lab, who["call_id"])
        await lab.until(lambda: consultation_alive(lab, t), label="consulting")
        action = "hangup" if kind == "complete" else "cancelatxfer"
        await cut(lab, trap, action, moment, delay, sending(kind))
