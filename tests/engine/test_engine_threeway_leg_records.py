"""A three-way hand-over to 120, end to end (simulator, daemon, records, wallboard): the line callbridge
called into the room is its own call at the PBX, yet it is the transfer's leg — never a second call offered
to 120 in the answer rate (人工接通率; 120 is offered the citizen's call by the transfer, and answers it when
the leg joins), never "in progress" on 120 once everybody hung up, and still traceable."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callbridge.app import App
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.store.kpi import KpiReport, compute
from callbridge.testing.clock import steady_clock
from tests.e2e.conftest import SECRET, agent_endpoint, copy_dialplans, sim_config, sim_phone_context

pytestmark = pytest.mark.date_sensitive  # the board's counts are today's

CITIZEN = "13700000021"


@dataclass
class Day:
    sim: Simulator
    app: App
    events: list[DomainEvent]
    clock: Callable[[], float]  # the daemon's: the day is fixed, whatever the date the test runs on

    async def until(self, what: Callable[[], Any], label: str, within: float = 8.0) -> Any:
        async with asyncio.timeout(within):
            while not (value := what()):  # noqa: ASYNC110 - both sides run on this loop: polling is the honest wait
                await asyncio.sleep(0.02)
        return value

    def first(self, type_: str, **match: Any) -> DomainEvent | None:
        return next((e for e in self.events if type_ == e.TYPE
                     and all(getattr(e, k, None) == v for k, v in match.items())), None)  # fmt: skip

    async def kpis(self) -> KpiReport:
        await self.app.writer.flush()
        now = self.clock()
        records = await asyncio.to_thread(self.app.records.period_records, now - 600, now + 60)
        return compute(records)

    def tile(self, hotline: str) -> dict[str, Any]:
        tiles = {t["hotline"]: t for t in self.app.board.snapshot(self.clock())["hotlines"]}
        return tiles[hotline]  # type: ignore[no-any-return]


@pytest.fixture
async def day(tmp_path: Path) -> AsyncIterator[Day]:
    dialplans = copy_dialplans(tmp_path / "dialplans")
    plan = load_dialplan(dialplans)
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    sim = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)], login_fail_delay=0.05)
    port = await sim.start()
    settings = Settings.model_validate({"ami": {"host": "127.0.0.1", "port": port, "auth": "plain"},
                                        "store": {"path": str(tmp_path / "records.sqlite3")}})  # fmt: skip
    events: list[DomainEvent] = []
    clock = steady_clock()
    app = App(settings, ami_secret=SECRET, dialplan_path=dialplans, event_sinks=[events.extend], enable_bus=False,
              enable_store=True, clock=clock)  # fmt: skip
    try:
        async with asyncio.timeout(10):
            await app.start()
        d = Day(sim, app, events, clock)
        await d.until(lambda: app.tracker.queues, "resync saw the queues")
        yield d
    finally:
        async with asyncio.timeout(10):
            await app.stop()
            await sim.stop()
        assert not sim.errors, sim.errors
        shutil.rmtree(dialplans, ignore_errors=True)


async def test_threeway_leg_to_120_is_part_of_the_transfer_not_a_citizen_call(day: Day) -> None:
    caller = day.sim.place_call(CITIZEN, "12345")
    agent = await day.until(lambda: [p for p in day.sim.bridged_with(caller.name) if p.startswith("PJSIP/agent")],
                            "a 12345 agent answers")  # fmt: skip
    await day.until(lambda: any(c.name == agent[0] for c in day.app.tracker.bridge_peers(caller.uniqueid)),
                    "the tracker saw the bridge")  # fmt: skip
    day.sim.agent_press(agent_endpoint(agent[0]), "*3")  # r-12345-120-threeway, agent_leaves: true

    called = await day.until(lambda: day.first("threeway.leg_called", caller_num=CITIZEN), "the 120 line called in")
    tid = called.data()["transfer_id"]
    leg_id = called.data()["leg_call_id"]
    assert leg_id == f"{tid}-leg0" and called.data()["to_hotline"] == "120"
    await day.until(lambda: day.first("threeway.agent_left", transfer_id=tid), "12345 agent left the room")
    # at the PBX the leg is a call of its own, offered to 120 — announced before that offer
    offered = await day.until(lambda: day.first("call.offered", call_id=leg_id), "the leg's own call.offered")
    assert offered.hotline == "120" and day.events.index(called) < day.events.index(offered)
    leg = await day.until(lambda: [c for c in day.sim.bridged_with(caller.name) if "hotline-120" in c], "120 leg")

    # while the hand-over runs: 120 was offered the citizen's call once (by the transfer), none waits there;
    # 12345 has its one answered call
    assert (day.tile("120")["offered_today"], day.tile("120")["waiting"]) == (1, 0)
    assert day.tile("12345")["answered_today"] == 1

    day.sim.caller_hangup(caller.name)  # the citizen hangs up, then the 120 agent
    await day.until(lambda: day.first("transfer.completed", transfer_id=tid), "two-sided close")
    day.sim.caller_hangup(leg[0])
    await day.until(lambda: day.first("call.ended", call_id=leg_id), "the leg's call ended")
    await day.until(lambda: day.first("call.ended", call_id=caller.linkedid), "the citizen's call ended")

    report = await day.kpis()
    citizen, ambulance = report.hotlines["12345"], report.hotlines["120"]
    assert (citizen.offered, citizen.answered, citizen.abandoned, citizen.in_progress) == (1, 1, 0, 0)
    assert citizen.answer_rate == 1.0
    assert (ambulance.offered, ambulance.answered, ambulance.abandoned, ambulance.in_progress) == (1, 1, 0, 0)
    assert ambulance.answer_rate == 1.0 and ambulance.transfers_in == 1
    assert report.transfers_by_pair == {("12345", "120"): {"completed": 1}}
    # the wallboard agrees: nothing lost, the leg not offered to 120 besides the citizen's call
    assert (day.tile("120")["offered_today"], day.tile("120")["answered_today"]) == (1, 1)
    assert day.tile("120")["abandoned_today"] == 0
    assert (day.tile("12345")["answered_today"], day.tile("12345")["abandoned_today"]) == (1, 0)
    assert day.app.board.offered_total["120"] == 1

    # traceable (可追溯): the leg's record is the transfer's, answered when it joined the room, and ended
    store = day.app.records
    [row] = store.search_calls(call_id=leg_id)
    assert (row["kind"], row["transfer_id"], row["hotline"], row["outcome"]) == ("threeway_leg", tid, "120", "answered")
    assert row["answered_at"] is not None and row["ended_at"] is not None
    timeline = store.call_timeline(caller.linkedid)
    assert timeline is not None and set(timeline["linked_call_ids"]) == {caller.linkedid, leg_id}
    assert {e["type"] for e in timeline["events"] if e["call_id"] == leg_id} >= {"call.offered", "call.ended"}
    back = store.call_timeline(leg_id)  # and from the leg's side, the citizen's call and the transfer
    assert back is not None and caller.linkedid in back["linked_call_ids"]
    assert [t["transfer_id"] for t in back["transfers"]] == [tid]
