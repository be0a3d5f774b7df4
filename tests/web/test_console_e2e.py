"""The console against the simulator, a real mosquitto and the daemon, over plain HTTP: a 12345 agent hands a
call to 110 with a ticket, 110 sees the hand-over before its phone rings, reports "dispatched" and the 12345
desk sees it; the records keep the loop; the MQTT side gets handover.feedback on the sender's topic. Over two
centres (tests/e2e/two_centres_lab.py: two simulators, two daemons, two bridged brokers) the 12345 desk's
"sent" list shows which 110 agent answered its hand-over and after how long, or that the citizen gave up in
the 110 queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from console_client import ConsoleClient
from console_lab import answered_call, console_lab

from callbridge.store.feedback import feedback_of
from callbridge.testing.lab import agent_endpoint, command
from tests.e2e.conftest import CALLER
from tests.e2e.two_centres_lab import TwoCentres, open_two_centres

pytestmark = pytest.mark.mosquitto


async def view_until(client: ConsoleClient, what: Any, label: str, within: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            status, view = await client.request("GET", "/view")
            assert status == 200, view
            if what(view):
                return dict(view)
            await asyncio.sleep(0.1)
    raise AssertionError(label)  # pragma: no cover


async def test_hand_over_pop_first_feedback_back_to_the_sender(tmp_path: Path) -> None:
    async with console_lab(tmp_path) as cl:
        lab = cl.lab
        desk110 = ConsoleClient(cl.base)
        status, me = await desk110.login(cl.desks["110"].login())
        assert status == 200 and me["hotline"] == "110", me
        agent = await answered_call(cl, "12345", CALLER, "Zhang San")
        desk = ConsoleClient(cl.base)
        status, me = await desk.login(cl.desks["12345"].login(agent, lang="en"))
        assert status == 200, me
        assert [d["to_hotline"] for d in me["destinations"]][:1] == ["110"]
        view = await view_until(desk, lambda v: v["call"] and v["call"]["state"] == "talking", "the 12345 call")
        assert (view["call"]["caller_num"], view["call"]["caller_name"], view["call"]["hotline"]) == (
            CALLER, "Zhang San", "12345")  # fmt: skip
        call_id = view["call"]["call_id"]

        async with aiomqtt.Client(cl.broker.host, cl.broker.port) as sub:
            await sub.subscribe("callbridge/lab/events/12345/handover/feedback", qos=1)
            status, reply = await desk.act("transfer", {"call_id": call_id, "to_hotline": "110", "mode": "blind",
                                                        "category": "police", "ticket": "JJ-2026-0042",
                                                        "summary": "邻居家有打斗声", "role": "ops"})  # fmt: skip
            assert status == 200 and reply["status"] == "executing", reply
            xfer = reply["result"]["transfer_id"]

            # the screen pop: 110 sees sender, reason and ticket while its phone has not been answered
            pop = await view_until(desk110, lambda v: v["incoming"], "the pop at 110")
            pops = [(p["transfer_id"], p["from_hotline"], p["agent"], p["ticket"], p["category"])
                    for p in pop["incoming"]]
            assert pops == [(xfer, "12345", agent, "JJ-2026-0042", "police")]
            assert not [e for e in lab.of_type("call.answered") if getattr(e, "agent", "") == "agent2101"]
            talking = await view_until(desk110, lambda v: v["received_from"] and v["call"]["state"] == "talking",
                                       "110 answers")  # fmt: skip
            assert talking["received_from"]["from_hotline"] == "12345" and talking["incoming"] == []
            # the engine's order: the hand-over event comes before the 110 phone rings and is answered
            types = [(e.TYPE, getattr(e, "agent", "")) for e in lab.events]
            requested = types.index(("transfer.requested", agent))
            ringing = types.index(("call.ringing", "agent2101"))
            assert requested < ringing < types.index(("call.answered", "agent2101"))

            status, reply = await desk110.act("handover_feedback", {"transfer_id": xfer, "outcome": "dispatched"})
            assert status == 200 and reply["ok"], reply
            async with asyncio.timeout(10):
                msg = await anext(aiter(sub.messages))
            data = orjson.loads(bytes(msg.payload))["data"]  # type: ignore[arg-type]
            assert (data["transfer_id"], data["outcome"], data["agent"], data["from_hotline"]) == (
                xfer, "dispatched", "agent2101", "12345")  # fmt: skip

        sent = await view_until(desk, lambda v: v["sent"] and v["sent"][-1]["feedback"], "feedback at 12345")
        assert sent["sent"][-1]["feedback"][-1]["outcome"] == "dispatched"
        # the same checks as MQTT: the 12345 desk may not report for 110, nor return a case without a reason
        status, reply = await desk.act("handover_feedback", {"transfer_id": xfer, "outcome": "resolved"})
        assert status == 403 and reply["error"]["code"] == "forbidden", reply
        status, reply = await desk110.act("handover_feedback", {"transfer_id": xfer, "outcome": "returned"})
        assert status == 400 and reply["error"]["code"] == "invalid", reply
        status, reply = await desk110.act("handover_feedback", {"transfer_id": "no-such", "outcome": "accepted"})
        assert reply["error"]["code"] == "unknown_handover", reply
        await lab.until(lambda: len(feedback_of(lab.app.records.backend, xfer)) == 1, label="recorded")
        assert feedback_of(lab.app.records.backend, xfer)[0]["agent"] == "agent2101"


async def test_attended_complete_and_cancel_and_three_way_leave_from_the_console(tmp_path: Path) -> None:
    async with console_lab(tmp_path) as cl:
        lab = cl.lab
        desk_agent: list[str] = []

        async def desk_with_call(caller: str) -> tuple[ConsoleClient, str]:
            agent = await answered_call(cl, "12345", caller, "")
            desk = ConsoleClient(cl.base)
            assert (await desk.login(cl.desks["12345"].login(agent)))[0] == 200
            desk_agent[:] = [agent]
            view = await view_until(desk, lambda v: v["call"] and v["call"]["state"] == "talking", "talking")
            return desk, view["call"]["call_id"]

        # attended to the 119 expert seats: consult (the caller held), then complete
        desk, call_id = await desk_with_call("13700000031")
        status, reply = await desk.act("transfer", {"call_id": call_id, "to_hotline": "119", "mode": "attended",
                                                    "category": "fire", "ticket": "F-1"})  # fmt: skip
        assert status == 200, reply
        xfer = reply["result"]["transfer_id"]
        consulting = await view_until(desk, lambda v: v["outgoing"] and v["outgoing"]["state"] == "answered",
                                      "the expert answers the consultation")  # fmt: skip
        assert (consulting["outgoing"]["mode"], consulting["outgoing"]["transfer_id"]) == ("attended", xfer)
        status, reply = await desk.act("complete", {"call_id": call_id, "transfer_id": xfer})
        assert status == 200 and reply["ok"], reply
        done = await view_until(desk, lambda v: v["outgoing"] is None, "the hand-over is done for the sender")
        assert done["sent"][-1]["state"] == "completed" and done["call"] is None
        await lab.until(lambda: not [c for c in lab.sim.channels() if c.startswith(f"PJSIP/{desk_agent[0]}-")],
                        label="the sending agent is off the call")  # fmt: skip

        # attended again, this time cancelled: the caller comes back to the agent
        lab.sim.caller_hangup(cl.callers[-1])  # the expert seat is free again
        desk, call_id = await desk_with_call("13700000032")
        status, reply = await desk.act("transfer", {"call_id": call_id, "to_hotline": "119", "mode": "attended",
                                                    "category": "fire"})  # fmt: skip
        xfer = reply["result"]["transfer_id"]
        await view_until(desk, lambda v: v["outgoing"] and v["outgoing"]["state"] == "answered", "consulting")
        status, reply = await desk.act("cancel", {"call_id": call_id, "transfer_id": xfer})
        assert status == 200 and reply["ok"], reply
        await lab.event("transfer.returned", transfer_id=xfer)

        # three-way to 120: caller, agent and 120 in a room; the agent leaves
        desk, call_id = await desk_with_call("13700000033")
        status, reply = await desk.act("three_way", {"call_id": call_id, "to_hotline": "120", "category": "medical",
                                                     "summary": "车祸伤员"})  # fmt: skip
        assert status == 200, reply
        xfer = reply["result"]["transfer_id"]
        joined = await view_until(desk, lambda v: v["outgoing"] and v["outgoing"]["state"] == "answered", "120 in")
        assert joined["outgoing"]["mode"] == "threeway"
        status, reply = await desk.act("leave", {"call_id": call_id})
        assert status == 200 and reply["ok"], reply
        await lab.event("threeway.agent_left", transfer_id=xfer)


async def test_a_supervisor_releases_a_nuisance_number(tmp_path: Path) -> None:
    async with console_lab(tmp_path) as cl:
        lab = cl.lab
        sup = ConsoleClient(cl.base)
        assert (await sup.login(cl.desks["sup"].login()))[0] == 200
        number = "13912340099"
        for _ in range(5):  # the dialplan's threshold: 5 calls to 12345 within 10 minutes
            lab.sim.place_call(number, "12345", hangup_after=0.5)
            await asyncio.sleep(0.15)
        flagged = await view_until(sup, lambda v: v["nuisance"], "flagged on the supervisor's desk")
        assert [n["caller_num"] for n in flagged["nuisance"]] == [number]

        agent_desk = ConsoleClient(cl.base)
        assert (await agent_desk.login(cl.desks["110"].login()))[0] == 200
        status, reply = await agent_desk.act("nuisance_release", {"caller_num": number})
        assert status == 403 and reply["error"]["code"] == "forbidden", reply  # supervisors only
        status, reply = await sup.act("nuisance_release", {"caller_num": "139 1234"})
        assert status == 400 and reply["error"]["code"] == "invalid", reply

        status, reply = await sup.act("nuisance_release", {"caller_num": number, "reason": "known elderly caller"})
        assert status == 200 and reply["result"]["forgotten_calls"] == 5, reply
        released = await lab.event("nuisance.released", caller_num=number)
        assert released.data()["agent"] == cl.desks["sup"].agent
        await view_until(sup, lambda v: v["nuisance"] == [], "released on the desk")
        before = len(lab.of_type("nuisance.flagged"))
        lab.sim.place_call(number, "12345", hangup_after=0.5)  # counted afresh: one call, no flag
        offered = [e for e in lab.of_type("call.offered") if getattr(e, "caller_num", "") == number]
        await lab.until(lambda: len([e for e in lab.of_type("call.offered")
                                     if getattr(e, "caller_num", "") == number]) == len(offered) + 1, label="6th call")
        assert len(lab.of_type("nuisance.flagged")) == before  # judged at the offer, in the same batch


async def test_a_supervisor_sends_a_queues_waiting_callers_to_the_remote_seats(tmp_path: Path) -> None:
    async with console_lab(tmp_path) as cl:
        lab = cl.lab
        for agent in ("agent1001", "agent1002", "agent1003"):
            lab.sim.set_agent(agent, "noanswer")
        callers = [lab.sim.place_call(f"1350000001{n}", "12345").name for n in range(2)]
        await lab.until(lambda: len(lab.sim.queue_order("q-12345")) == 2, label="two callers waiting")
        assert not lab.of_type("queue.overflow_started")  # below every threshold: nothing overflows by itself

        agent_desk = ConsoleClient(cl.base)
        assert (await agent_desk.login(cl.desks["12345"].login("agent1001")))[0] == 200
        status, reply = await agent_desk.act("overflow_now", {"queue": "q-12345"})
        assert status == 403 and reply["error"]["code"] == "forbidden", reply  # supervisors only
        sup = ConsoleClient(cl.base)
        assert (await sup.login(cl.desks["sup"].login()))[0] == 200
        status, reply = await sup.act("overflow_now", {"queue": "q 12345"})
        assert status == 400 and reply["error"]["code"] == "invalid", reply
        status, reply = await sup.act("overflow_now", {"queue": "q-nowhere"})
        assert status == 400 and reply["error"]["code"] == "unknown_queue", reply
        assert not lab.of_type("queue.overflow_started")

        status, reply = await sup.act("overflow_now", {"queue": "q-12345"})
        assert status == 200 and reply["result"]["withdrawn"] == 2, reply
        assert reply["result"]["overflow"] == "of-12345-remote" and reply["result"]["target"] == "q-12345-remote"
        started = await lab.event("queue.overflow_started", queue="q-12345")
        assert started.data()["reason"] == "manual" and started.data()["waiting"] == 2
        # the waiting callers are withdrawn to the remote seats, which answer them
        await lab.until(lambda: all(lab.sim.channel(c).context == "cb-overflow" for c in callers))  # type: ignore[union-attr]
        remote = await lab.until(
            lambda: [p for c in callers for p in lab.sim.bridged_with(c) if p.startswith("Local/30")])
        assert remote
        assert not lab.sim.queue_order("q-12345")
        await lab.event("queue.overflow_ended", queue="q-12345")


async def signed_in_at_12345(pair: TwoCentres, agent: str, role: str = "agent") -> ConsoleClient:
    """A 12345 desk of the two-centres lab (no command key there: the lab's unsigned sign-in)."""
    desk = ConsoleClient(pair.c12345.app.web.url)
    status, me = await desk.login({"agent": agent, "hotline": "12345", "role": role, "secret": "lab", "lang": "en"})
    assert status == 200 and me["hotline"] == "12345", me
    return desk


async def hand_over_from_the_console(pair: TwoCentres, caller: str) -> tuple[ConsoleClient, str, str]:
    """A citizen's call answered at 12345, handed over to 110 with the desk's one key: (desk, transfer, citizen)."""
    citizen, agent = await pair.c12345.lab.answered_call("12345", caller=caller)
    desk = await signed_in_at_12345(pair, agent_endpoint(agent))
    view = await view_until(desk, lambda v: v["call"] and v["call"]["state"] == "talking", "the 12345 call")
    status, reply = await desk.act("transfer", {"call_id": view["call"]["call_id"], "to_hotline": "110",
                                                "category": "police", "ticket": "GD-2026-0101"})  # fmt: skip
    assert status == 200 and reply["ok"], reply
    return desk, str(reply["result"]["transfer_id"]), citizen


def sent_entry(view: dict[str, Any], xfer: str) -> dict[str, Any]:
    return next((h for h in view["sent"] if h["transfer_id"] == xfer), {})


async def test_over_two_centres_the_sender_console_shows_which_110_agent_answered(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        b = pair.c110.lab
        b.sim.set_agent("agent2101", "answer", answer_after=1.0)  # the 110 agent takes a moment
        desk, xfer, _ = await hand_over_from_the_console(pair, "13700000201")
        answered = await b.event("handover.answered", timeout=15, transfer_id=xfer)  # the 110 centre's word
        view = await view_until(desk, lambda v: sent_entry(v, xfer).get("status") == "answered",
                                "answered at 110, on the 12345 desk", within=20)  # fmt: skip
        sent = sent_entry(view, xfer)
        assert sent["reached"] == {"outcome": "answered", "agent": "agent2101",
                                   "wait_s": answered.data()["wait_s"], "reason": ""}  # fmt: skip
        assert sent["reached"]["wait_s"] >= 0.5 and (sent["ticket"], sent["match"]) == ("GD-2026-0101", "header")
        # the 110 agent's feedback comes beside it; the status stays the 110 centre's word on the call
        reply = b.app.feedback.handle(command("handover_feedback", transfer_id=xfer, agent="agent2101",
                                              outcome="dispatched").body, frozenset({"110"}))  # fmt: skip
        assert reply["from_hotline"] == "12345"
        view = await view_until(desk, lambda v: sent_entry(v, xfer).get("feedback"), "feedback at 12345", within=15)
        assert ([f["outcome"] for f in sent_entry(view, xfer)["feedback"]], sent_entry(view, xfer)["status"]) == (
            ["dispatched"], "answered")  # fmt: skip


async def test_over_two_centres_the_sender_console_shows_the_caller_gave_up_in_the_110_queue(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        a, b = pair.c12345.lab, pair.c110.lab
        b.sim.set_agent("agent2101", "noanswer")  # nobody at 110 picks up
        desk, xfer, citizen = await hand_over_from_the_console(pair, "13700000211")
        # bound at 110, the citizen in its queue: the desk reads "waiting at 110", not "answered"
        await view_until(desk, lambda v: sent_entry(v, xfer).get("status") == "waiting", "waiting at 110", within=20)
        a.sim.caller_hangup(citizen)  # the citizen gives up
        abandoned = await b.event("handover.abandoned", timeout=15, transfer_id=xfer)
        view = await view_until(desk, lambda v: sent_entry(v, xfer).get("status") == "abandoned",
                                "abandoned at 110, on the 12345 desk", within=20)  # fmt: skip
        assert sent_entry(view, xfer)["reached"] == {"outcome": "abandoned", "agent": "",
                                                     "wait_s": abandoned.data()["wait_s"],
                                                     "reason": "abandoned_in_queue"}  # fmt: skip
        # the 12345 supervisor's desk lists the hotline's hand-overs with the same word
        sup = await signed_in_at_12345(pair, "agent1001", "supervisor")
        status, sup_view = await sup.request("GET", "/view")
        assert status == 200 and sent_entry(sup_view, xfer)["status"] == "abandoned", sup_view
