"""What callbridge knows after its own restart (issue 15.3, issue 17.2): the daemon stops (gracefully, and
``kill -9`` in the subprocess test), the PBX keeps its calls, the daemon starts again on the same records
and outbox. A call transferred 12345 → 110 and answered is not offered again, keeps its hotline (its events
stay under ``events/12345/``, not ``events/_/``), ends answered with its transfer completed, and has one
record row; a call that ended while the daemon was down is closed in the records (``ended_while_unobserved``);
the wallboard's counters are those of before the restart.

Real parts: the simulator over TCP AMI, a real mosquitto, the SQLite records and outbox on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from callbridge.app import App
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.testing.clock import steady_clock
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from callbridge.testing.ports import PortHold
from tests.e2e.conftest import ROOT, SECRET, agent_endpoint, copy_dialplans, sim_config, sim_phone_context

pytestmark = pytest.mark.mosquitto

A_CALLER = "13800138000"  # transferred to 110 and answered there; still talking across the restart
B_CALLER = "13700000222"  # answered at 12345; hangs up while callbridge is down
COUNTERS = ("offered_today", "answered_today", "abandoned_today")


async def until(what: Callable[[], Any], timeout: float = 10.0, label: str = "") -> Any:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = what()
                if value:
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out: {label}") from None


@dataclass
class Bench:
    tmp: Path
    sim: Simulator
    broker: Mosquitto
    dialplans: Path
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def mqtt(self) -> dict[str, Any]:
        outbox = str(self.tmp / "outbox.db")
        return {"host": self.broker.host, "port": self.broker.port, "site": "lab", "outbox_path": outbox,
                "reconnect_min_s": 0.05, "reconnect_max_s": 0.5}  # fmt: skip

    def published(self, type_path: str, call_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Messages of one event type (``call/offered``) for one call on the hotline topics."""
        return [(t, p) for t, p in self.received if "/events/" in t and t.endswith("/" + type_path)
                and p.get("data", {}).get("call_id") == call_id]  # fmt: skip

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.tmp / "records.sqlite3", timeout=5)) as db:
            return db.execute(sql, params).fetchall()

    async def talking(self, caller: str, prefix: str) -> str:
        return str(await until(lambda: next((p for p in self.sim.bridged_with(caller) if p.startswith(prefix)), None),
                               label=f"{caller} talks with {prefix}"))  # fmt: skip


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, answer_110_after: float | None = None) -> AsyncIterator[Bench]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    dialplans = copy_dialplans(tmp_path / "dialplans")
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(render_extensions(load_dialplan(dialplans)) + "\n" + sim_phone_context(), encoding="utf-8")
    config = sim_config(load_dialplan(dialplans), extensions)
    if answer_110_after is not None:  # the 110 trunk rings that long before it answers
        for trunk in config.trunks:
            if trunk.name == "hotline-110":
                trunk.answer_after = answer_110_after
    sim = Simulator(config, users=[AmiUser("callbridge", SECRET)])
    await sim.start()
    with Mosquitto(tmp_path / "broker") as broker:
        b = Bench(tmp_path, sim, broker, dialplans)
        async with aiomqtt.Client(broker.host, broker.port, identifier="restart-watch", timeout=10) as client:
            await client.subscribe("callbridge/lab/events/#", qos=1)

            async def pump() -> None:
                async for m in client.messages:
                    b.received.append((m.topic.value, orjson.loads(bytes(m.payload))))  # type: ignore[arg-type]

            task = asyncio.create_task(pump())
            try:
                yield b
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await sim.stop()


def board_counters(board: dict[str, Any]) -> dict[str, Any]:
    tiles = {t["hotline"]: tuple(t[k] for k in COUNTERS) for t in board["hotlines"]}
    flows = {(f["from"], f["to"]): (f["active"], f["today"]) for f in board["flows"]}
    return {"tiles": tiles, "flows": flows, "active": sorted(x["transfer_id"] for x in board["active_transfers"])}


async def transferred_and_answered(b: Bench, caller_agent: Callable[[], Any]) -> tuple[str, str, str]:
    """Call A reaches a 12345 agent who presses *1: the 110 trunk answers. Returns (caller, call id, transfer id)."""
    a = b.sim.place_call(A_CALLER, "12345")
    agent = await b.talking(a.name, "PJSIP/agent")
    await caller_agent()
    b.sim.agent_press(agent_endpoint(agent), "*1")
    await b.talking(a.name, "PJSIP/hotline-110")
    answered = await until(lambda: b.published("transfer/answered", a.linkedid), label="transfer.answered published")
    return a.name, a.linkedid, answered[0][1]["data"]["transfer_id"]


def in_process_app(b: Bench, clock: Callable[[], float], sink: list[DomainEvent]) -> App:
    """The daemon's App in this process on the bench's simulator, broker and records file."""
    values = {"ami": {"host": "127.0.0.1", "port": b.sim.port, "auth": "plain"}, "mqtt": b.mqtt(),
              "store": {"path": str(b.tmp / "records.sqlite3")}}  # fmt: skip
    return App(Settings.model_validate(values), ami_secret=SECRET, dialplan_path=b.dialplans,
               event_sinks=[sink.extend], enable_store=True, clock=clock)  # fmt: skip


async def connected(app: App) -> App:
    await app.start()
    assert app.ami is not None
    await app.ami.wait_connected(5)
    return app


async def delivered_and_recorded_once(b: Bench, call_a: str, call_b: str, xfer: str) -> None:
    """After the restart: every event of A and B under a hotline topic, A offered once and its transfer
    completed on both hotlines, one closed record row per call (B's ended while unobserved)."""
    await until(lambda: b.published("call/ended", call_a), label="A's call.ended delivered")
    ours = [(t, m["data"]["call_id"]) for t, m in b.received
            if m.get("data", {}).get("call_id") in (call_a, call_b)]  # fmt: skip
    assert ours and not [t for t, _ in ours if "/events/_/" in t], ours  # every event of the calls under a hotline
    assert len(b.published("call/offered", call_a)) == 1
    assert [t for t, _ in b.published("transfer/completed", call_a)] == [
        "callbridge/lab/events/12345/transfer/completed", "callbridge/lab/events/110/transfer/completed"]
    rows = b.rows("SELECT call_id, hotline, ended_ts IS NOT NULL, cause FROM calls ORDER BY offered_ts")
    assert [r[0] for r in rows] == [call_a, call_b]  # one row per call id
    assert rows[1][2:] == (1, "ended_while_unobserved") and rows[0][2] == 1
    assert b.rows("SELECT outcome FROM transfers WHERE transfer_id = ?", xfer) == [("completed",)]


async def test_graceful_restart_keeps_hotline_transfer_records_and_board(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        clock = steady_clock()  # both runs' "today" is one day, whatever the date (midnight never passes mid-test)
        first: list[DomainEvent] = []
        app1 = await connected(in_process_app(b, clock, first))

        async def tracked() -> None:
            await until(lambda: any(e.TYPE == "call.answered" and e.hotline == "12345" for e in first))

        caller_a, call_a, xfer = await transferred_and_answered(b, tracked)
        b_chan = b.sim.place_call(B_CALLER, "12345")
        await b.talking(b_chan.name, "PJSIP/agent")
        await until(lambda: any(e.TYPE == "call.answered" and e.call_id == b_chan.linkedid for e in first))
        await asyncio.sleep(0.3)  # the records writer's batch
        before = board_counters(app1.board.snapshot(clock()))
        assert before["active"] == [xfer] and before["tiles"]["12345"] == (2, 2, 0)
        await app1.stop()  # graceful: no call is touched
        stopped = clock()

        b.sim.caller_hangup(b_chan.name)  # B ends while nobody watches
        await until(lambda: b_chan.name not in b.sim.channels(), label="B gone from the PBX")

        second: list[DomainEvent] = []
        app2 = await connected(in_process_app(b, clock, second))
        unobserved = await until(lambda: [e for e in second if e.TYPE == "call.ended" and e.call_id == b_chan.linkedid])
        try:
            # B: ended while unobserved, once, answered, under its hotline; its record row is closed
            ended_b = unobserved[0]
            assert ended_b.data()["reason"] == "ended_while_unobserved" and ended_b.data()["answered"] is True
            assert ended_b.hotline == "12345"
            answered_b = next(e for e in first if e.TYPE == "call.answered" and e.call_id == b_chan.linkedid)
            assert answered_b.ts <= ended_b.ts <= stopped  # the last moment it was known alive
            # A: known, not offered again; the board is what it was
            assert not [e for e in second if e.TYPE == "call.offered"], [e.TYPE for e in second]
            assert app2.tracker.calls[call_a].hotline == "12345"
            after = board_counters(app2.board.snapshot(clock()))
            assert after == before
            b.sim.caller_hangup(caller_a)
            ended_a = await until(lambda: [e for e in second if e.TYPE == "call.ended" and e.call_id == call_a])
            completed = await until(lambda: [e for e in second if e.TYPE == "transfer.completed"])
        finally:
            await app2.stop()
        assert ended_a[0].hotline == "12345" and ended_a[0].data()["answered"] is True
        assert completed[0].data()["transfer_id"] == xfer and completed[0].data()["to_hotline"] == "110"
        await delivered_and_recorded_once(b, call_a, b_chan.linkedid, xfer)


def live_board(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/live", timeout=5) as resp:
        board: dict[str, Any] = json.loads(resp.read())
    return board


def run_settings(b: Bench, web: int) -> Path:
    """``callbridge run``'s settings file for the bench (web board on ``web``)."""
    settings = b.tmp / "callbridge.yaml"
    mqtt = b.mqtt()
    settings.write_text(
        f"site_id: lab\nami: {{host: 127.0.0.1, port: {b.sim.port}, auth: plain}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {mqtt['port']}, site: lab, outbox_path: {mqtt['outbox_path']}}}\n"
        f"dialplan: {{path: {b.dialplans}}}\nlog: {{format: json}}\nweb: {{host: 127.0.0.1, port: {web}}}\n"
        f"store: {{path: {b.tmp / 'records.sqlite3'}}}\n",
        encoding="utf-8",
    )
    return settings


def published_once_each(b: Bench, call_a: str, call_b: str, xfer: str) -> None:
    """After the restarted run: B's end (unobserved) and A's (hang-up) once each under 12345, A's transfer
    completed once on both hotlines, nothing under ``events/_/``, one record row per call."""
    assert len(b.published("call/offered", call_a)) == 1  # never offered again
    (topic_b, ended_b), = b.published("call/ended", call_b)
    assert topic_b == "callbridge/lab/events/12345/call/ended"
    assert ended_b["data"]["reason"] == "ended_while_unobserved" and ended_b["data"]["answered"] is True
    (topic_a, ended_a), = b.published("call/ended", call_a)
    assert topic_a == "callbridge/lab/events/12345/call/ended" and ended_a["data"]["answered"] is True
    assert ended_a["data"]["reason"] == "hangup"
    completed = b.published("transfer/completed", call_a)
    assert {p["data"]["transfer_id"] for _, p in completed} == {xfer}
    assert [t for t, _ in completed] == ["callbridge/lab/events/12345/transfer/completed",
                                         "callbridge/lab/events/110/transfer/completed"]  # fmt: skip
    ours = [t for t, m in b.received if m.get("data", {}).get("call_id") in (call_a, call_b)]
    assert not [t for t in ours if "/events/_/" in t], ours
    rows = b.rows("SELECT call_id, hotline, cause FROM calls ORDER BY offered_ts")
    assert rows == [(call_a, "12345", "Normal Clearing"), (call_b, "12345", "ended_while_unobserved")]
    assert b.rows("SELECT outcome FROM transfers") == [("completed",)]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_callbridge_run_restarted_after_an_answered_transfer(tmp_path: Path, stop: signal.Signals) -> None:
    # the web port is held across the restart: the second run binds it again (callbridge.testing.ports)
    with PortHold() as web_port:
        await restarted_after_an_answered_transfer(tmp_path, stop, web_port.port)


async def restarted_after_an_answered_transfer(tmp_path: Path, stop: signal.Signals, web: int) -> None:
    async with bench(tmp_path) as b:
        settings = run_settings(b, web)
        env = {**os.environ, "CALLBRIDGE_AMI_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        runs: list[asyncio.subprocess.Process] = []

        async def start() -> None:
            with (tmp_path / f"run{len(runs)}.log").open("wb") as log:
                runs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "callbridge", "run", "--config", str(settings), cwd=tmp_path, env=env,
                    stdout=log, stderr=log))  # fmt: skip
            log_file = tmp_path / f"run{len(runs) - 1}.log"
            await until(lambda: b'"ami.connected"' in log_file.read_bytes(), 20, "callbridge connected")

        try:
            await start()

            async def tracked() -> None:
                await until(lambda: b.rows("SELECT 1 FROM calls WHERE answered_ts IS NOT NULL"), label="A answered")

            caller_a, call_a, xfer = await transferred_and_answered(b, tracked)
            b_chan = b.sim.place_call(B_CALLER, "12345")
            await b.talking(b_chan.name, "PJSIP/agent")
            # what callbridge knew is on disk: A's answered transfer, B's answer
            b_answered = "SELECT 1 FROM calls WHERE call_id = ? AND answered_ts IS NOT NULL"
            await until(lambda: b.rows("SELECT 1 FROM transfers WHERE outcome = 'answered'")
                        and b.rows(b_answered, b_chan.linkedid), label="records written")  # fmt: skip
            before, day_before = board_counters(live_board(web)), date.today()
            runs[0].send_signal(stop)
            async with asyncio.timeout(15):
                await runs[0].wait()
            b.sim.caller_hangup(b_chan.name)  # B ends while callbridge is down
            await until(lambda: b_chan.name not in b.sim.channels(), label="B gone from the PBX")
            await start()
            await until(lambda: b.published("call/ended", b_chan.linkedid), label="B's end published")
            after, day_after = board_counters(live_board(web)), date.today()
            b.sim.caller_hangup(caller_a)
            await until(lambda: b.published("transfer/completed", call_a), label="transfer.completed published")
            await until(lambda: b.published("call/ended", call_a), label="A's end published")
        finally:
            for proc in runs:
                if proc.returncode is None:
                    proc.terminate()
                    async with asyncio.timeout(15):
                        await proc.wait()
        if day_before == day_after:  # the daemon's real clock: "today" differs once midnight fell between (the
            assert after == before  # in-process test above compares on a steady clock, whatever the time)
        published_once_each(b, call_a, b_chan.linkedid, xfer)


async def test_restart_while_the_transfer_rings_follows_it_to_its_answer(tmp_path: Path) -> None:
    """Stopped while the 110 trunk rings; the trunk answers while callbridge starts again: the transfer
    rebuilt from the records is answered (its ringing leg is known) and completed when the call closes."""
    async with bench(tmp_path, answer_110_after=2.5) as b:
        clock = steady_clock()
        first: list[DomainEvent] = []
        app1 = await connected(in_process_app(b, clock, first))
        a = b.sim.place_call(A_CALLER, "12345")
        agent = await b.talking(a.name, "PJSIP/agent")
        await until(lambda: any(e.TYPE == "call.answered" and e.call_id == a.linkedid for e in first))
        b.sim.agent_press(agent_endpoint(agent), "*1")
        ringing = await until(lambda: [e for e in first if e.TYPE == "transfer.ringing"], label="110 rings")
        await asyncio.sleep(0.3)  # the records writer's batch
        await app1.stop()
        assert not [e for e in first if e.TYPE == "transfer.answered"]  # it still rang when callbridge stopped

        second: list[DomainEvent] = []
        app2 = in_process_app(b, clock, second)
        await app2.start()
        try:
            answered = await until(lambda: [e for e in second if e.TYPE == "transfer.answered"], label="answered")
            await b.talking(a.name, "PJSIP/hotline-110")
            b.sim.caller_hangup(a.name)
            completed = await until(lambda: [e for e in second if e.TYPE == "transfer.completed"], label="completed")
            ended = await until(lambda: [e for e in second if e.TYPE == "call.ended"], label="call.ended")
        finally:
            await app2.stop()
        xfer = ringing[0].data()["transfer_id"]
        assert answered[0].data()["transfer_id"] == xfer and completed[0].data()["transfer_id"] == xfer
        assert not [e for e in second if e.TYPE in ("call.offered", "transfer.failed", "transfer.returned")]
        assert ended[0].hotline == "12345" and ended[0].data()["answered"] is True
        assert b.rows("SELECT call_id, hotline FROM calls") == [(a.linkedid, "12345")]
        assert b.rows("SELECT outcome FROM transfers") == [("completed",)]


async def test_without_records_the_hotline_is_read_back_from_the_pbx(tmp_path: Path) -> None:
    """A callbridge with no records of the call (a new machine, a lost records file) attaches while the caller
    is in ``cb-to-110`` at ``s``: the hotline comes from ``CB_HOTLINE`` on the caller's channel (Getvar at the
    resync), so the call is offered on 12345 — not with hotline null and its events under ``events/_/``."""
    async with bench(tmp_path) as b:
        values = {"ami": {"host": "127.0.0.1", "port": b.sim.port, "auth": "plain"}}
        first: list[DomainEvent] = []
        app1 = App(Settings.model_validate(values), ami_secret=SECRET, dialplan_path=b.dialplans,
                   event_sinks=[first.extend], enable_bus=False)  # fmt: skip
        await app1.start()
        try:
            a = b.sim.place_call(A_CALLER, "12345")
            agent = await b.talking(a.name, "PJSIP/agent")
            await until(lambda: any(e.TYPE == "call.answered" and e.call_id == a.linkedid for e in first))
            b.sim.agent_press(agent_endpoint(agent), "*1")
            await b.talking(a.name, "PJSIP/hotline-110")
        finally:
            await app1.stop()
        assert b.sim.channel_vars(a.name)["CB_HOTLINE"] == "12345"
        second: list[DomainEvent] = []
        app2 = App(Settings.model_validate(values), ami_secret=SECRET, dialplan_path=b.dialplans,
                   event_sinks=[second.extend], enable_bus=False)  # fmt: skip
        await app2.start()
        try:
            offered = await until(lambda: [e for e in second if e.TYPE == "call.offered"], label="adopted")
            assert [(e.call_id, e.hotline) for e in offered] == [(a.linkedid, "12345")]
            assert app2.tracker.channel(a.name) is not None
            assert app2.tracker.channel(a.name).variables["CB_HOTLINE"] == "12345"  # type: ignore[union-attr]
        finally:
            await app2.stop()
        assert offered[0].data()["context"] == "cb-to-110"  # where the caller is now
