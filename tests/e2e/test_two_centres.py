"""Two centres end to end (issue 21): a hand-over crosses from the 12345 centre's PBX and daemon to the 110
centre's, over the inter-centre trunk (simulated) and two bridged mosquitto brokers (real)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from callbridge.app import App
from callbridge.bus.envelope import TYPE_PREFIX
from callbridge.centres.events import HandoverBound
from callbridge.testing.lab import SECRET, started
from callbridge.testing.mosquitto import Mosquitto
from callbridge.web.console_state import Desk
from tests.e2e.conftest import CALLER, agent_endpoint, command
from tests.e2e.two_centres_lab import Centre, TwoCentres, bridge_up, open_two_centres

pytestmark = pytest.mark.mosquitto
#: How long the bridge is down in the outage test (issue 21.4: 60 s).
OUTAGE_S = 60.0


async def transfer_to_110(pair: TwoCentres, caller: str = CALLER, ticket: str = "GD-2026-0001") -> tuple[str, str]:
    """A citizen's call answered at 12345, handed over to 110 by command: (transfer id, citizen's channel)."""
    a = pair.c12345.lab
    chan, agent = await a.answered_call("12345", caller=caller)
    call_id = a.sim.channel(chan).linkedid  # type: ignore[union-attr]
    assert a.app.service is not None
    result = await a.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                to_hotline="110", category="police", ticket=ticket,
                                                summary="邻居家传出呼救声"))  # fmt: skip
    return str(result["transfer_id"]), chan


async def test_the_hand_over_binds_by_header_and_the_110_pop_carries_its_data(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        xfer, _ = await transfer_to_110(pair)
        b = pair.c110.lab
        bound = await b.event("handover.bound", timeout=15, transfer_id=xfer)
        assert isinstance(bound, HandoverBound)
        assert (bound.match, bound.ticket, bound.agent, bound.category, bound.caller_num, bound.centre) == (
            "header", "GD-2026-0001", "agent1001", "police", CALLER, "c12345")  # fmt: skip
        # this centre's call: the one the trunk brought in, carrying the header the 12345 PBX added
        [trunk_call] = pair.trunks[0].calls
        assert trunk_call == (CALLER, "110", xfer)
        call = b.app.tracker.calls.get(bound.call_id or "")
        assert call is not None and call.hotline == "110"
        # the 110 agent's screen pop: the console view of the desk that talks with the bound call
        await b.until(lambda: any(c.agent == "agent2101" for c in b.app.console.state.calls.values()), 10)
        view = b.app.console.state.view(Desk("agent2101", "110"), now=time.time())
        pop = view["received_from"]
        assert pop is not None and (pop["transfer_id"], pop["ticket"], pop["agent"], pop["category"], pop["match"]) == (
            xfer, "GD-2026-0001", "agent1001", "police", "header")  # fmt: skip
        # both records: the receiving centre's own binding, and the sending centre's copy taken in over the link
        for centre in (pair.c110, pair.c12345):
            rows = await until_rows(centre, "SELECT data FROM events WHERE type = 'handover.bound' AND transfer_id = ?",
                                    xfer)
            assert '"match":"header"' in rows[0]["data"].replace(" ", "")


async def test_the_110_screen_pop_reaches_subscribers_before_the_110_agent_rings(tmp_path: Path) -> None:
    """handover.bound goes out behind the call.queued it binds, before the call.ringing of the same AMI read."""
    # the 110 daemon reads the caller's queue join and the agent's ringing in one TCP read, as beside Asterisk
    async with open_two_centres(tmp_path, coalesce_110=b"Event: QueueCallerJoin") as pair:
        b = pair.c110
        seen: list[tuple[str, str]] = []  # (event type, call id) in the order the 110 broker delivered them
        subscribed = asyncio.Event()

        async def watch() -> None:
            async with aiomqtt.Client(b.broker.host, b.broker.port) as client:
                await client.subscribe("callbridge/c110/events/110/#", qos=1)
                subscribed.set()
                async for m in client.messages:
                    env = orjson.loads(bytes(m.payload))  # type: ignore[arg-type,unused-ignore]
                    seen.append((str(env["type"]).removeprefix(TYPE_PREFIX), str(env.get("callid") or "")))

        watcher = asyncio.create_task(watch())
        try:
            async with asyncio.timeout(10):
                await subscribed.wait()
            xfer, _ = await transfer_to_110(pair)
            bound = await b.lab.event("handover.bound", timeout=15, transfer_id=xfer)
            call = bound.call_id or ""
            pop, ring = ("handover.bound", call), ("call.ringing", call)
            await b.lab.until(lambda: pop in seen and ring in seen, 15)
            assert seen.index(pop) < seen.index(ring), seen
            local = [(e.TYPE, e.call_id) for e in b.lab.events]  # and so in every sink of the 110 daemon
            assert local.index(pop) < local.index(ring)
            assert b.relay is not None and b.relay.bursts >= 1  # the case of the issue: one read held both
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def until_rows(centre: Centre, sql: str, *args: Any, timeout: float = 15.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """The rows once there are some (the other centre's events come over the bridge)."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await centre.records_of(sql, *args)
            if rows:
                return rows
            await asyncio.sleep(0.1)


async def test_a_peer_that_strips_the_header_is_bound_by_caller_number(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path, strip_header=True) as pair:
        xfer, _ = await transfer_to_110(pair, caller="13700000021")
        bound = await pair.c110.lab.event("handover.bound", timeout=15, transfer_id=xfer)
        d = bound.data()
        assert (d["match"], d["caller_num"], d["ticket"]) == ("caller_number", "13700000021", "GD-2026-0001")
        assert pair.trunks[0].calls == [("13700000021", "110", "")]  # no header reached the 110 PBX
        assert pair.c110.lab.app.tracker.calls[bound.call_id or ""].hotline == "110"


async def test_the_other_way_a_110_hand_over_to_12345_binds_at_the_12345_centre(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        b = pair.c110.lab
        chan, agent = await b.answered_call("110", caller="13700000071")
        assert b.app.service is not None
        result = await b.app.service.handle(command("transfer", call_id=b.sim.channel(chan).linkedid,  # type: ignore[union-attr]
                                                    agent=agent_endpoint(agent), to_hotline="12345",
                                                    category="non_police", ticket="JJ-110-0071"))  # fmt: skip
        bound = await pair.c12345.lab.event("handover.bound", timeout=15, transfer_id=result["transfer_id"])
        d = bound.data()
        assert (d["match"], d["from_hotline"], d["to_hotline"], d["ticket"], d["agent"], d["caller_num"]) == (
            "header", "110", "12345", "JJ-110-0071", "agent2101", "13700000071")  # fmt: skip
        assert pair.trunks[2].calls == [("13700000071", "12345", result["transfer_id"])]


async def test_feedback_returns_to_the_12345_records_and_both_reports_show_both_outcomes(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        xfer, citizen = await transfer_to_110(pair, caller="13700000031")
        b = pair.c110.lab
        bound = await b.event("handover.bound", timeout=15, transfer_id=xfer)
        await pair.c12345.lab.event("transfer.answered", timeout=10, transfer_id=xfer)
        # the 110 agent reports the case resolved (the console's handover_feedback command)
        cmd = command("handover_feedback", transfer_id=xfer, agent="agent2101", outcome="resolved", ticket="JJ-110-7")
        reply = b.app.feedback.handle(cmd.body, frozenset({"110"}))
        assert reply["from_hotline"] == "12345"
        feedback = await b.event("handover.feedback", timeout=5, transfer_id=xfer)
        assert feedback.call_id == bound.call_id  # this centre's call, learnt from the binding
        [row] = await until_rows(pair.c12345, "SELECT outcome, agent, ticket, to_hotline FROM handover_feedback"
                                              " WHERE transfer_id = ?", xfer)  # fmt: skip
        assert row == {"outcome": "resolved", "agent": "agent2101", "ticket": "JJ-110-7", "to_hotline": "110"}
        # the sender's console shows the feedback on its own hand-over
        sent = pair.c12345.app.console.state.handovers[xfer]
        assert [f["outcome"] for f in sent.feedback] == ["resolved"] and sent.match == "header"
        pair.c12345.lab.sim.caller_hangup(citizen)  # the call closes on both sides
        await pair.c12345.lab.event("transfer.completed", timeout=10, transfer_id=xfer)
        for centre in (pair.c12345, pair.c110):
            await centre.records_of("SELECT 1")
            out = report(centre, "csv")
            [line] = [r for r in csv.DictReader(io.StringIO(out)) if r["transfer_id"] == xfer]
            assert (line["from_hotline"], line["to_hotline"], line["received"], line["match"], line["feedback"]) == (
                "12345", "110", "bound", "header", "resolved")  # fmt: skip
            assert line["ticket"] == "GD-2026-0001" and line["agent"] == "agent1001"
            # the transfer's own outcome: the sender's record at 12345; reached (bound) at 110
            assert line["transfer"] == ("completed" if centre is pair.c12345 else "reached")
        assert "| 12345 → 110 |" in report(pair.c110, "markdown")
        for centre in (pair.c12345, pair.c110):  # the plain KPI report shows the pair's hand-overs after the KPIs
            kpi = report(centre, "markdown", centres=False)
            assert "## 中心间交接 Hand-overs between centres" in kpi and f"| {xfer} | GD-2026-0001 |" in kpi
            # transfers by pair: the sender's own transfer, and at 110 the hand-over it received
            pair_row = "| 12345 | 110 | completed | 1 |" if centre is pair.c12345 else "| 12345 | 110 | bound | 1 |"
            assert pair_row in kpi


def report(centre: Centre, fmt: str, *, centres: bool = True) -> str:
    """``callbridge report [--centres]`` on this centre's records file (the CLI, in a subprocess)."""
    which = ["--centres"] if centres else ["--dialplan", str(centre.lab.dialplans)]
    done = subprocess.run([sys.executable, "-m", "callbridge", "report", *which, "--format", fmt,
                           "--period", "2000-01-01..2100-01-01", "--db", str(centre.records)],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


async def test_the_110_centre_unreachable_applies_the_chain_and_fails_the_hand_over_on_both_sides(
    tmp_path: Path,
) -> None:
    async with open_two_centres(tmp_path) as pair:
        a, b = pair.c12345.lab, pair.c110.lab
        for line in ("centre-110", "centre-110-backup"):
            a.sim.set_trunk(line, "down")  # the 110 PBX answers nothing on either line
        xfer, _ = await transfer_to_110(pair, caller="13700000041")
        await a.event("transfer.backup_line", timeout=10, transfer_id=xfer)
        returned = await a.event("transfer.returned", timeout=15, transfer_id=xfer)
        assert returned.data()["to_hotline"] == "110"
        failed = await b.event("handover.failed", timeout=15, transfer_id=xfer)
        assert (failed.data()["outcome"], failed.data()["ticket"], failed.data()["agent"]) == (
            "returned", "GD-2026-0001", "agent1001")  # fmt: skip
        # the 12345 records hold the peer's failure beside their own returned transfer
        await until_rows(pair.c12345, "SELECT 1 FROM events WHERE type = 'handover.failed' AND transfer_id = ?", xfer)
        # a later call of the same number at 110, within the window: bound to nothing
        later = b.sim.place_call("13700000041", "110")
        await b.event("call.queued", timeout=10, call_id=later.linkedid)
        await asyncio.sleep(1.0)
        assert b.of_type("handover.bound") == []
        assert pair.trunks[0].calls == []
        for centre in (pair.c12345, pair.c110):  # the sender's record, and the outcome the receiver was told
            [row] = [r for r in csv.DictReader(io.StringIO(report(centre, "csv"))) if r["transfer_id"] == xfer]
            assert (row["received"], row["transfer"]) == ("failed", "returned")


async def test_the_data_arriving_after_the_call_binds_it_then(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        b = pair.c110.lab
        pair.c110.broker.stop(kill=True)  # the bridge (on the 110 broker) is down: no hand-over data crosses
        xfer, _ = await transfer_to_110(pair, caller="13700000051")
        await pair.c12345.lab.event("transfer.answered", timeout=10, transfer_id=xfer)  # the PBXs still talk
        queued = await b.event("call.queued", timeout=10, hotline="110")
        await asyncio.sleep(0.5)
        assert b.of_type("handover.bound") == []  # the call waits for its data
        pair.c110.broker.start()
        bound = await b.event("handover.bound", timeout=30, transfer_id=xfer)
        assert (bound.call_id, bound.data()["match"], bound.data()["ticket"]) == (queued.call_id, "header",
                                                                                 "GD-2026-0001")  # fmt: skip


class Counter:
    """Every envelope of both centres' events seen on one broker, as (topic, envelope id); a persistent session
    (it survives a restart of its broker, which keeps the session), reconnecting until stopped."""

    def __init__(self, broker: Mosquitto, client_id: str) -> None:
        self.broker, self.client_id = broker, client_id
        self.seen: set[tuple[str, str]] = set()
        self.subscribed = asyncio.Event()
        self.errors: list[str] = []
        self._task = asyncio.create_task(self._run())

    def of(self, site: str) -> set[tuple[str, str]]:
        return {s for s in self.seen if s[0].startswith(f"callbridge/{site}/events/")}

    async def _run(self) -> None:
        while True:
            try:
                client = aiomqtt.Client(self.broker.host, self.broker.port, identifier=self.client_id,
                                        protocol=aiomqtt.ProtocolVersion.V311, clean_session=False)  # fmt: skip
                async with client:
                    await client.subscribe("callbridge/+/events/#", qos=1)
                    self.subscribed.set()
                    async for m in client.messages:
                        if not m.topic.value.endswith("/probe"):
                            self.seen.add((m.topic.value, orjson.loads(bytes(m.payload))["id"]))  # type: ignore[arg-type,unused-ignore]
            except Exception as exc:  # lost with its broker (of any kind): connect again
                self.errors.append(repr(exc))
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_bridge_down_for_60_s_during_the_transfer_loses_nothing(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        a, b = pair.c12345.lab, pair.c110.lab
        at_a, at_b = Counter(pair.c12345.broker, "counter-12345"), Counter(pair.c110.broker, "counter-110")
        try:
            async with asyncio.timeout(10):
                await at_a.subscribed.wait()
                await at_b.subscribed.wait()
            await a.until(lambda: at_a.seen == at_b.seen, 10)  # quiet: what was published so far is on both
            # a message through the 110 broker after the counters subscribed: it saves its sessions to disk
            # (autosave on changes), the counter's too, before the kill
            await bridge_up(pair.c12345.broker, pair.c110.broker)
            await asyncio.sleep(0.5)
            pair.c110.broker.stop(kill=True)  # the bridge process killed for 60 s
            xfer, citizen = await transfer_to_110(pair, caller="13700000061")
            await a.event("transfer.answered", timeout=10, transfer_id=xfer)
            await b.event("call.answered", timeout=10, hotline="110")  # the 110 agent talks with the citizen
            await asyncio.sleep(OUTAGE_S)
            assert b.of_type("handover.bound") == []
            pair.c110.broker.start()
            await b.event("handover.bound", timeout=30, transfer_id=xfer)
            cmd = command("handover_feedback", transfer_id=xfer, agent="agent2101", outcome="dispatched")
            b.app.feedback.handle(cmd.body, frozenset({"110"}))
            a.sim.caller_hangup(citizen)
            await a.event("transfer.completed", timeout=10, transfer_id=xfer)
            await until_rows(pair.c12345, "SELECT 1 FROM handover_feedback WHERE transfer_id = ?", xfer)

            def both_sides_on_both_brokers() -> bool:
                return all(at_a.of(site) == at_b.of(site) for site in ("c12345", "c110"))

            with contextlib.suppress(TimeoutError):
                await a.until(both_sides_on_both_brokers, 30)
            for site in ("c12345", "c110"):
                missing_b, missing_a = at_a.of(site) - at_b.of(site), at_b.of(site) - at_a.of(site)
                errors = [e for e in at_b.errors if "refused" not in e]
                assert not missing_a and not missing_b, (site, len(at_a.of(site)), len(at_b.of(site)), missing_a,
                                                         missing_b, errors)  # fmt: skip
            sent = {t.rsplit("/", 2)[-2] + "." + t.rsplit("/", 1)[-1] for t, _ in at_a.of("c12345")}
            back = {t.rsplit("/", 2)[-2] + "." + t.rsplit("/", 1)[-1] for t, _ in at_a.of("c110")}
            assert {"transfer.requested", "transfer.answered", "transfer.completed"} <= sent
            assert {"handover.bound", "handover.feedback"} <= back
            # the 110 daemon took in each of the sender's steps once (requested, ringing, number check,
            # answered, completed): the ones queued during the outage too
            peer = b.app.centres.subscriber if b.app.centres is not None else None
            assert peer is not None and peer.refused == 0
            for_110 = {i for t, i in at_a.of("c12345") if t.startswith(("callbridge/c12345/events/110/transfer/",
                                                                          "callbridge/c12345/events/110/handover/"))}
            with contextlib.suppress(TimeoutError):  # the daemon's subscriber may trail the counters under load
                await b.until(lambda: peer.taken >= len(for_110), 15)
            assert peer.taken == len(for_110) >= 5, (peer.taken, len(for_110), peer.duplicates)
        finally:
            await at_a.close()
            await at_b.close()


async def test_a_hand_over_sent_while_the_110_daemon_is_down_binds_when_it_is_back(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        b = pair.c110.lab
        b.sim.set_agent("agent2101", "noanswer")  # the citizen waits in the 110 queue
        old = b.app
        await old.stop()  # the 110 daemon is down; its broker keeps its persistent peer session
        xfer, _ = await transfer_to_110(pair, caller="13700000081")
        await pair.c12345.lab.event("transfer.answered", timeout=10, transfer_id=xfer)
        await b.until(lambda: b.sim.queue_order("q-110"), 10)
        b.app = App(old.settings, ami_secret=SECRET, dialplan_path=b.dialplans, event_sinks=[b.events.extend],
                    enable_web=True, watch_interval=0.5)  # fmt: skip
        await started(b)
        try:
            # the new run found the caller already queued (the resync, no call.queued) and the hand-over data kept
            # by the broker for its persistent session; the header of a call that was already waiting is not
            # read back at a resync (no Getvar for callers in cb-inbound), so the number binds it, and says so
            bound = await b.event("handover.bound", timeout=20, transfer_id=xfer)
            assert (bound.data()["match"], bound.data()["caller_num"]) == ("caller_number", "13700000081")
            assert bound.call_id == b.sim.channel(b.sim.queue_order("q-110")[0]).linkedid  # type: ignore[union-attr]
        finally:
            await b.app.stop()
            b.app = old  # the lab stops the daemon it started (already stopped: a no-op)


async def test_a_110_daemon_restarted_between_the_data_and_the_call_still_binds_it_by_header(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        b = pair.c110.lab
        pair.trunks[0].hold()  # the INVITE is slow to reach the 110 PBX: the data comes first
        xfer, _ = await transfer_to_110(pair, caller="13700000091")
        announced = await b.event("handover.announced", timeout=15, transfer_id=xfer)
        assert (announced.data()["ticket"], announced.also_hotlines()) == ("GD-2026-0001", ())  # not sent back
        old = b.app
        await old.stop()  # the 110 daemon restarts before the call arrives (its records drained on the way out)
        b.app = App(old.settings, ami_secret=SECRET, dialplan_path=b.dialplans, event_sinks=[b.events.extend],
                    enable_web=True, watch_interval=0.5)  # fmt: skip
        await started(b)
        try:
            assert b.app.centres is not None and xfer in b.app.centres.binder.pending
            pair.trunks[0].release()
            bound = await b.event("handover.bound", timeout=15, transfer_id=xfer)
            assert (bound.data()["match"], bound.data()["ticket"], bound.data()["agent"]) == (
                "header", "GD-2026-0001", "agent1001")  # fmt: skip
        finally:
            await b.app.stop()
            b.app = old
