"""The simulator held to the PBX (issue 15, point 8): a live scenario also runs on the simulator, and the
sequences of callbridge's domain events must be the same.

:func:`sequence` reduces events (MQTT envelopes from the live run, or ``DomainEvent`` objects from the
simulator run) to what must agree — event type, hotlines, outcome, numbers — never ids or times.
Differences that are understood stand in ``sim_differences.yaml`` with their reason; any other difference
fails.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from callbridge.domain import DomainEvent
from tests.e2e.conftest import agent_endpoint, command, open_lab

ALLOWLIST = Path(__file__).resolve().parent / "sim_differences.yaml"
#: the fields of an event that must agree between the PBX and the simulator
FIELDS = ("hotline", "from_hotline", "to_hotline", "mode", "reason", "caller_num", "presented_num", "line",
          "answered", "category")  # fmt: skip
#: event types that say nothing about a scenario's course (state snapshots, bookkeeping)
IGNORED = ("command.received", "ami.connected", "ami.lost", "dialplan.reloaded", "queue.member_changed")


def _item(type_: str, data: dict[str, Any]) -> tuple[Any, ...]:
    return (type_, *(data.get(f) for f in FIELDS))


def sequence(events: Iterable[dict[str, Any] | DomainEvent], call_id: str | None = None) -> list[tuple[Any, ...]]:
    """``(type, hotline, from_hotline, …)`` per event of *call_id* (all calls when None), in order."""
    out = []
    for e in events:
        if isinstance(e, DomainEvent):
            type_, data = e.TYPE, e.data()
        else:
            type_, data = str(e.get("type", "")).removeprefix("org.callbridge."), dict(e.get("data") or {})
        if type_ in IGNORED or (call_id is not None and data.get("call_id") != call_id):
            continue
        out.append(_item(type_, data))
    return out


def until(seq: list[tuple[Any, ...]], type_: str) -> list[tuple[Any, ...]]:
    """The sequence up to and including the first *type_* event (later events depend on when one stops)."""
    types = [item[0] for item in seq]
    return seq[: types.index(type_) + 1] if type_ in types else seq


def allowed(scenario: str) -> set[tuple[Any, ...]]:
    """Items of *scenario* that may appear on one side only (``sim_differences.yaml``)."""
    doc = YAML(typ="safe").load(ALLOWLIST.read_text("utf-8")) or {}
    entries = (doc.get(scenario) or []) + (doc.get("all") or [])
    return {tuple(entry["item"]) for entry in entries}


#: The caller and the agent are Redirected into the three-way room while the hotline leg is originated: on
#: the PBX the two run in parallel, and under load the joins may come before or after the leg rings. These
#: events are compared in their own order, and every other event in its order, not one against the other.
APART = ("conference.joined", "conference.left")


def _apart(seq: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return [i for i in seq if i[0] not in APART], [i for i in seq if i[0] in APART]


def differences(live: list[tuple[Any, ...]], sim: list[tuple[Any, ...]], scenario: str) -> list[str]:
    """Every difference not in the allowlist, as readable lines (empty: the simulator agrees)."""
    ok = allowed(scenario)
    a = [i for i in live if i not in ok]
    b = [i for i in sim if i not in ok]
    if _apart(a) == _apart(b):
        return []
    diff = difflib.ndiff([repr(x) for x in a], [repr(x) for x in b])
    return [f"{scenario}: live (-) and simulator (+) differ:", *(line for line in diff if line[:1] != "?")]


def assert_same(live: list[tuple[Any, ...]], sim: list[tuple[Any, ...]], scenario: str) -> None:
    """Fail with the differences, one per line, unless the simulator agrees with the PBX."""
    found = differences(live, sim, scenario)
    assert not found, "\n".join(found)


@dataclass(frozen=True)
class Twin:
    """A live scenario as the simulator plays it: a call to *did*, a transfer command, trunk behaviours."""

    did: str
    to_hotline: str
    category: str
    mode: str | None = None
    trunks: tuple[tuple[str, str, float], ...] = ()  # (endpoint, behaviour, timer B seconds)
    until: tuple[str, ...] = ("transfer.answered",)  # the event types the run waits for, in order


async def _play(twin: Twin, tmp: Path, caller: str) -> list[tuple[Any, ...]]:
    async with open_lab(tmp) as lab:
        for endpoint, behaviour, timer_b in twin.trunks:
            lab.sim.endpoints.set_behaviour(endpoint, behaviour, timer_b=timer_b)
        chan, agent = await lab.answered_call(twin.did, caller=caller)
        call_id = lab.sim.channel(chan).linkedid  # type: ignore[union-attr]
        assert lab.app.service is not None
        extra = {"mode": twin.mode} if twin.mode else {}
        await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                             to_hotline=twin.to_hotline, category=twin.category, **extra))  # fmt: skip
        for type_ in twin.until:
            await lab.event(type_, timeout=45)
        return sequence(lab.events, call_id)


#: SIP timer B of the live lab (timer_t1 = 100 ms): what an unreachable trunk takes to fail there
TIMER_B = 6.4
SCENARIOS = {
    "blind_12345_to_110_mqtt": Twin("12345", "110", "police", until=("transfer.number_verified", "transfer.answered")),
    "busy_122_backup": Twin("12345", "122", "traffic", trunks=(("hotline-122", "busy", TIMER_B),)),
    "attended_119_expert": Twin("12345", "119", "fire", mode="attended"),
    "threeway_120_agent_leaves": Twin("12345", "120", "medical", until=("threeway.agent_left",)),
    "busy_water_back_to_agent": Twin("12345", "96116", "water", trunks=(("utility-water", "busy", TIMER_B),),
                                     until=("transfer.returned",)),
    "unreachable_heating_back_to_agent": Twin("12345", "96069", "heating",
                                              trunks=(("utility-heating", "unreachable", TIMER_B),),
                                              until=("transfer.returned",)),
    "qualified_power_backup": Twin("12345", "95598", "power", trunks=(("utility-power", "down", TIMER_B),)),
}  # fmt: skip


def hold_to_simulator(live_events: list[dict[str, Any]], call_id: str, scenario: str, tmp: Path, caller: str) -> None:
    """The live call's events and the simulator's run of *scenario* agree up to the scenario's last event."""
    last = SCENARIOS[scenario].until[-1]
    live = until(sequence(live_events, call_id), last)
    sim = until(run_on_simulator(scenario, tmp / f"simtwin-{scenario}", caller), last)
    assert_same(live, sim, scenario)


def run_on_simulator(scenario: str, tmp: Path, caller: str) -> list[tuple[Any, ...]]:
    """The scenario's domain-event sequence on the simulator (the same dialplans, rendered the same way)."""
    tmp.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_play(SCENARIOS[scenario], tmp, caller))
