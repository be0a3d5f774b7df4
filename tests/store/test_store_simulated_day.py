"""A short simulated day: the real daemon (App) beside the PBX simulator over TCP, with the records sink,
the live board and the web server attached. What the records, KPIs and API say must be what happened."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callbridge.app import App
from callbridge.dialplan import Dialplan, load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.settings import Settings
from callbridge.sim.channels import Channel
from callbridge.sim.config import LAB_DIALPLAN, SimConfig
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.store.kpi import KpiReport, compute
from callbridge.store.live import LiveBoard
from callbridge.store.records import RecordStore
from callbridge.store.sink import RecordsSink
from callbridge.store.writer import RecordWriter
from callbridge.testing.clock import steady_clock
from callbridge.web.server import WebServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sim-day-not-a-real-secret"
TOKEN = "sim-day-token"

pytestmark = pytest.mark.slow


def sim_config(plan: Dialplan, extensions: Path) -> SimConfig:
    """Every PJSIP queue member is an agent phone and every trunk line a hotline that answers."""
    agents = {m.split("/", 1)[1] for q in plan.queues.values() for m in q.members if m.startswith("PJSIP/")}
    trunks = {line.split("@", 1)[1]: line.split("/", 1)[1].split("@")[0]
              for t in plan.trunks.values() for line in t.lines if "@" in line}  # fmt: skip
    return SimConfig.model_validate({
        "dialplan": str(extensions), "carrier": "carrier", "inbound_context": "cb-inbound",
        "agents": [{"name": a, "number": a.removeprefix("agent"), "answer_after": 0.3} for a in sorted(agents)],
        "trunks": [{"name": e, "number": n, "answer_after": 0.3} for e, n in sorted(trunks.items())],
        "queues": [{"name": q.name, "strategy": "ringall", "timeout": float(q.timeout), "members": list(q.members)}
                   for q in plan.queues.values()],
    })  # fmt: skip


async def until(what: Callable[[], Any], label: str, within: float = 10.0) -> Any:
    try:
        async with asyncio.timeout(within):
            # the simulator and the daemon share this loop; polling their state is the simple, honest wait
            while not (value := what()):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out waiting for: {label}") from None


def get_json(url: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


async def a_short_day(sim: Simulator, app: App, seen: list[DomainEvent]) -> tuple[Channel, Channel, Channel]:
    """A and B reach 12345 agents, A is handed over to 110 with one key; D finds nobody free and gives up
    after a second; then A and B hang up. Returns A, B and D once every call has ended."""
    a = sim.place_call("13800000001", "12345")
    agent_a = await until(lambda: [p for p in sim.bridged_with(a.name) if p.startswith("PJSIP/agent")], "A")
    b = sim.place_call("13800000002", "12345")
    await until(lambda: [p for p in sim.bridged_with(b.name) if p.startswith("PJSIP/agent")], "B answered")
    await until(lambda: any(c.name == agent_a[0] for c in app.tracker.bridge_peers(a.uniqueid)), "tracked")
    sim.agent_press(agent_a[0].split("/", 1)[1].rsplit("-", 1)[0], "*1")
    await until(lambda: [e for e in seen if e.TYPE == "transfer.answered"], "transfer answered")
    await until(lambda: [e for e in seen if e.TYPE == "transfer.number_verified"], "number verified")
    for agent in ("agent1001", "agent1002", "agent1003"):
        sim.set_agent(agent, "dnd")
    d = sim.place_call("13800000004", "12345", hangup_after=1.0)
    sim.caller_hangup(b)
    sim.caller_hangup(a)
    ended = {a.linkedid, b.linkedid, d.linkedid}
    await until(lambda: ended <= {e.call_id for e in seen if e.TYPE == "call.ended"}, "all calls ended")
    return a, b, d


def kpis_as_it_happened(kpi: KpiReport, seen: list[DomainEvent], a: Channel, b: Channel, d: Channel) -> None:
    k = kpi.hotlines["12345"]
    assert (k.offered, k.answered, k.abandoned) == (3, 2, 1)
    assert k.answer_rate == pytest.approx(2 / 3) and k.below_target  # 12345's target is 0.85
    assert k.transfers_out == 1 and k.number_verified == 1.0
    lifecycle = [e.TYPE.removeprefix("transfer.") for e in seen if e.TYPE.startswith("transfer.")
                 and e.TYPE.removeprefix("transfer.") in ("requested", "ringing", "answered", "completed",
                                                          "failed", "returned", "refused")]  # fmt: skip
    assert kpi.transfers_by_pair == {("12345", "110"): {lifecycle[-1]: 1}}

    # waits: the tracker's own wait of the first answer of A and B, and D's time until it gave up
    def first(type_: str, call_id: str) -> DomainEvent:
        return next(e for e in seen if type_ == e.TYPE and e.call_id == call_id)

    waits = [first("call.answered", c.linkedid).data()["wait_s"] for c in (a, b)]
    waits.append(first("call.ended", d.linkedid).ts - first("call.offered", d.linkedid).ts)
    assert k.wait_avg_s == pytest.approx(sum(waits) / 3, abs=0.01)
    assert k.wait_p90_s == pytest.approx(max(waits), abs=0.01)


async def http_tells_the_same_story(base: str, a: Channel) -> None:
    rows = await asyncio.to_thread(get_json, f"{base}/api/calls?number=13800000001")
    (row,) = rows["calls"]
    assert row["call_id"] == a.linkedid and row["transfers"] == 1 and row["outcome"] == "answered"
    timeline = await asyncio.to_thread(get_json, f"{base}/api/calls/{a.linkedid}")
    (xfer,) = timeline["transfers"]
    assert (xfer["from_hotline"], xfer["to_hotline"], xfer["caller_num"]) == ("12345", "110", "13800000001")
    assert xfer["number_verified"] is True
    types = [e["type"] for e in timeline["events"]]
    assert types.index("call.offered") < types.index("transfer.requested") < types.index("call.ended")
    live = await asyncio.to_thread(get_json, f"{base}/api/live")
    tile = next(t for t in live["hotlines"] if t["hotline"] == "12345")
    assert (tile["offered_today"], tile["answered_today"], tile["abandoned_today"]) == (3, 2, 1)
    assert tile["waiting"] == 0 and tile["target"] == 0.85


async def test_simulated_calls_are_recorded_as_they_happened(tmp_path: Path) -> None:
    plan = load_dialplan(ROOT / "dialplans")
    extensions = tmp_path / "extensions.conf"
    phones = LAB_DIALPLAN[LAB_DIALPLAN.index("[sim]") : LAB_DIALPLAN.index("[internal]")]
    extensions.write_text(render_extensions(plan) + "\n" + phones, encoding="utf-8")
    sim = Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)], login_fail_delay=0.05)
    port = await sim.start()
    store = RecordStore.sqlite(tmp_path / "records.sqlite3")
    writer = RecordWriter(store)
    board = LiveBoard(list(plan.model.hotlines),
                      targets={n: h.answer_rate_target for n, h in plan.model.hotlines.items()})  # fmt: skip
    clock = steady_clock()  # the daemon's and the server's: the same day throughout, whatever the date today
    web = WebServer(store, board, token=TOKEN, writer=writer, clock=clock)
    seen: list[DomainEvent] = []
    sink = RecordsSink(writer, board, on_change=web.notify)
    settings = Settings.model_validate({"ami": {"host": "127.0.0.1", "port": port, "auth": "plain"}})
    app = App(settings, ami_secret=SECRET, dialplan_path=ROOT / "dialplans", event_sinks=[seen.extend, sink],
              enable_bus=False, clock=clock)  # fmt: skip
    t0 = clock()
    async with writer:
        await web.start()
        async with asyncio.timeout(10):
            await app.start()
            assert app.ami is not None
            await app.ami.wait_connected(5)
        await until(lambda: app.tracker.queues, "resync saw the queues")
        try:
            a, b, d = await a_short_day(sim, app, seen)
            await asyncio.wait_for(writer.flush(), 10)
            kpi = compute(store.period_records(t0 - 1, clock() + 1),
                          {n: h.answer_rate_target for n, h in plan.model.hotlines.items()})  # fmt: skip
            kpis_as_it_happened(kpi, seen, a, b, d)
            await http_tells_the_same_story(web.url, a)
        finally:
            async with asyncio.timeout(10):
                await app.stop()
                await sim.stop()
                await web.stop()
    store.close()
