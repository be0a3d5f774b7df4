"""Every transfer kind under AMI cuts (issue 17.4): attended start, its complete and cancel, three-way set-up.

The AMI connection between the daemon and the simulator is dropped at a random moment (seeded) while the
transfer's actions are on their way or just ran. After the reconnect and the resync, no Originate / Atxfer /
CancelAtxfer / completing Hangup has been executed twice by the PBX, and no transfer is left ``consulting``
unless the PBX really still has the consultation (the transfer resumed); otherwise it ended (completed,
returned, or failed with a reason). The issue asks for 100 cuts of each kind; a suite run does
:data:`CUTS` of each (seeded, so every run cuts at the same moments) to keep its time in seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from callbridge.engine.transfer import TERMINAL, Transfer, TState
from callbridge.sim.replies import Reply
from callbridge.sim.simulator import Simulator
from tests.e2e.conftest import Lab, agent_endpoint, command

CUTS = 6  # per kind and run (the probe: 100; see the module doc)
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


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["attended", "complete", "cancel", "threeway"])
async def test_every_transfer_kind_under_ami_cuts(lab: Lab, kind: str) -> None:
    rng = random.Random(f"17.4-{kind}")
    outcomes: Counter[str] = Counter()
    trap = CutTrap(lab.sim)
    service = lab.app.service
    assert service is not None
    for n in range(CUTS):
        moment, delay = MOMENTS[n % 3], rng.uniform(0.0, 0.25)
        caller, agent = await lab.answered_call("110" if kind == "threeway" else "12345", caller=f"137000004{n:02d}")
        call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
        who = {"call_id": call_id, "agent": agent_endpoint(agent)}
        if kind == "threeway":
            action = rng.choice(["redirect", "originate"])
            await cut(lab, trap, action, moment, delay,
                      lambda who=who: service.handle(command("three_way", **who, to_hotline="12345",
                                                             category="non_police")))  # fmt: skip
        elif kind == "attended":
            await cut(lab, trap, "atxfer", moment, delay,
                      lambda who=who: service.handle(command("transfer", **who, to_hotline="119", mode="attended",
                                                     category="fire")))  # fmt: skip
        else:
            await service.handle(command("transfer", **who, to_hotline="119", mode="attended", category="fire"))
            t = transfer_of(lab, call_id)
            await lab.until(lambda t=t: consultation_alive(lab, t), label="consulting")
            action = "hangup" if kind == "complete" else "cancelatxfer"
            await cut(lab, trap, action, moment, delay, lambda who=who: service.handle(command(kind, **who)))
        t = transfer_of(lab, call_id)
        outcomes[f"{moment}:{await settled(lab, t, kind)}"] += 1
        await end_call(lab, caller, t)
    assert not trap.twice(), trap.twice()
    assert sum(outcomes.values()) == CUTS
    print(kind, "cuts:", CUTS, "outcomes:", dict(outcomes), "actions executed:", sum(trap.seen.values()),
          "executed twice:", len(trap.twice()))
