"""Three-way, attended, expert priority, overflow, nuisance, reload and AMI loss, end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callbridge.errors import CommandError
from tests.e2e.conftest import Lab, agent_endpoint, command


async def test_threeway_hand_over_then_the_sending_agent_leaves(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000005")
    lab.sim.agent_press(agent_endpoint(agent), "*3")  # r-12345-120-threeway, agent_leaves: true

    started = await lab.event("threeway.started")
    room = started.data()["room"]
    answered = await lab.event("transfer.answered", to_hotline="120")
    await lab.event("transfer.number_verified", to_hotline="120")
    left = await lab.event("threeway.agent_left")
    assert left.data()["room"] == room
    # PBX side: caller and the 120 leg stay together in the room; the 120 leg shows the caller's number
    room_peers = await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if "hotline-120" in c])
    leg = lab.sim.channel(room_peers[0])
    assert leg is not None and leg.cid_num == "13700000005"
    assert lab.sim.channel_vars(leg)["CB_XFER_ID"] == answered.data()["transfer_id"]
    assert not [c for c in lab.sim.bridged_with(caller) if agent_endpoint(agent) in c]


async def test_attended_transfer_cancelled_returns_the_caller_to_the_agent(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000006")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", mode="attended", category="fire"))
    assert reply["mode"] == "attended"
    # the consultation is under way (cb-expert-119 reports the target, the expert seat rings or answered)
    await lab.until(lambda: lab.app.engine.transfers[reply["transfer_id"]].state.value in ("consulting", "ringing",
                                                                                          "answered"))
    await asyncio.sleep(0.5)
    await lab.app.service.handle(command("cancel", call_id=call_id, agent=agent_endpoint(agent),
                                         transfer_id=reply["transfer_id"]))
    returned = await lab.event("transfer.returned", transfer_id=reply["transfer_id"])
    assert returned.data()["reason"] == "cancelled"
    assert await lab.until(lambda: agent in lab.sim.bridged_with(caller))


async def test_attended_transfer_completed_joins_caller_and_expert(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000012")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", mode="attended", category="fire"))
    # the agent consults the 119 expert seat while the caller waits
    await lab.until(lambda: [c for c in lab.sim.channels() if c.startswith("Local/2291@sim")])
    # cb-expert-119 reports CallbridgeTarget, so the consultation leg is known and its ringing reported
    ringing = await lab.event("transfer.ringing", transfer_id=reply["transfer_id"])
    assert ringing.data()["line"] == "q-119-expert" and ringing.data()["to_hotline"] == "119"
    assert lab.app.engine.transfers[reply["transfer_id"]].route_channel.startswith("Local/119@cb-expert-119")
    await asyncio.sleep(0.5)
    await lab.app.service.handle(command("complete", call_id=call_id, agent=agent_endpoint(agent)))
    await lab.event("transfer.answered", transfer_id=reply["transfer_id"])
    def expert_peer() -> list[str]:  # through the Local hop Atxfer created
        names = [lab.sim.bridged_with(caller)]
        names += [lab.sim.bridged_with(c[:-1] + "2") for c in names[0] if c.startswith("Local/") and c.endswith(";1")]
        return [c for group in names for c in group if c.startswith("Local/2291@sim")]

    assert await lab.until(expert_peer), lab.sim.bridged_with(caller)
    assert agent not in lab.sim.channels()
    lab.sim.caller_hangup(caller)
    await lab.event("transfer.completed", transfer_id=reply["transfer_id"])


async def test_emergency_referral_jumps_the_expert_queue(lab: Lab) -> None:
    lab.sim.set_agent("agent2191", "noanswer")  # the expert seat is busy ringing: callers wait
    waiting = []
    for n in range(2):  # earlier callers of normal priority in 110's expert queue
        chan = lab.sim.place_call(f"1360000000{n}", "110")
        lab.sim.pbx.goto(chan, "cb-expert-110", "s")
        waiting.append(chan.name)
    await lab.until(lambda: len(lab.sim.queue_order("q-110-expert")) == 2)
    assert lab.app.service is not None
    await lab.app.service.handle(command("set_mode", mode="emergency", reason="e2e"))
    await lab.event("mode.switched", mode="emergency")
    caller, agent = await lab.answered_call("12345", caller="13700000007")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent), to_hotline="110",
                                         mode="blind", category="emergency"))
    prio = await lab.event("queue.priority_set", queue="q-110-expert")
    assert prio.data()["priority"] == 10
    order = await lab.until(lambda: (o := lab.sim.queue_order("q-110-expert")) and len(o) == 3 and o)
    assert order[0] == caller and order[1:] == waiting


async def test_overflow_starts_and_ends_with_the_surge(lab: Lab) -> None:
    for agent in ("agent1001", "agent1002", "agent1003"):
        lab.sim.set_agent(agent, "noanswer")
    assert lab.app.service is not None
    await lab.app.service.handle(command("set_mode", mode="surge"))
    callers = [lab.sim.place_call(f"1350000000{n}", "12345").name for n in range(2)]
    started = await lab.event("queue.overflow_started", queue="q-12345")
    assert started.data()["reason"] == "waiting"
    await lab.until(lambda: lab.sim.world.global_vars.get("CB_OVERFLOW_12345") == "of-12345-remote")
    # the waiting callers were withdrawn to the remote seats, which answer them
    await lab.until(lambda: all(lab.sim.channel(c).context == "cb-overflow" for c in callers))  # type: ignore[union-attr]
    assert await lab.until(lambda: [p for c in callers for p in lab.sim.bridged_with(c) if p.startswith("Local/30")])
    await lab.event("queue.overflow_ended", queue="q-12345")
    assert not lab.sim.queue_order("q-12345")
    await lab.until(lambda: lab.sim.world.global_vars.get("CB_OVERFLOW_12345") == "", label="entry routing normal")


async def test_nuisance_caller_is_flagged_and_110_notified(lab: Lab) -> None:
    number = "13911112222"
    for _ in range(5):
        chan = lab.sim.place_call(number, "12345")
        await lab.until(lambda chan=chan: lab.app.tracker.calls.get(chan.linkedid))
        lab.sim.caller_hangup(chan)
    flagged = await lab.event("nuisance.flagged")
    assert flagged.data()["caller_num"] == number and flagged.data()["count"] == 5
    assert flagged.also_hotlines() == ("110",)
    for _ in range(5):  # an exempt number (the city duty office) is never flagged
        chan = lab.sim.place_call("13800138000", "12345")
        await lab.until(lambda chan=chan: lab.app.tracker.calls.get(chan.linkedid))
        lab.sim.caller_hangup(chan)
    await asyncio.sleep(0.3)
    assert len(lab.of_type("nuisance.flagged")) == 1


async def test_invalid_reload_is_kept_out_and_a_valid_one_swapped_in(lab: Lab) -> None:
    running = lab.app.engine.plan
    bad = lab.dialplans / "zz-broken.yaml"
    bad.write_text("rules:\n  r-bad:\n    from_hotline: '12345'\n    to_hotline: '999'\n    code: '*9'\n")
    rejected = await lab.event("dialplan.rejected")
    assert rejected.data()["problems"]
    assert lab.app.engine.plan is running
    bad.unlink()
    await lab.event("dialplan.reloaded")
    assert lab.app.engine.plan is not running
    with pytest.raises(CommandError):
        await lab.app.service.handle(command("set_mode", mode="no-such-mode"))  # type: ignore[union-attr]


async def test_ami_dropped_after_the_redirect_ran_no_double_transfer(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000008")
    redirect = lab.sim.handlers["redirect"]

    def redirect_then_drop(sim: Any, msg: Any) -> Any:
        reply = redirect(sim, msg)  # Asterisk ran the Redirect …
        sim.drop_connections()  # … and the connection died before callbridge read the reply
        return reply

    lab.sim.handlers["redirect"] = redirect_then_drop
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    requested = await lab.event("transfer.requested")
    await lab.event("ami.lost")
    await lab.until(lambda: len(lab.of_type("ami.connected")) >= 2, 10)
    lab.sim.handlers["redirect"] = redirect
    answered = await lab.event("transfer.answered", transfer_id=requested.data()["transfer_id"], timeout=10)
    transfer = lab.app.engine.transfers[answered.data()["transfer_id"]]
    assert any(h[1] == "unknown" or h[2] == "unknown" for h in transfer.history) or transfer.state.value == "answered"
    assert len([c for c in lab.sim.channels() if "hotline-110" in c]) == 1  # never sent twice
    assert len(lab.of_type("transfer.requested")) == 1 and not lab.of_type("transfer.failed")
    trunk = await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if "hotline-110" in c])
    # the resynced tracker agrees with the PBX
    assert trunk[0] in {c.name for c in lab.app.tracker.bridge_peers(caller)}


async def test_ami_dropped_before_the_redirect_ran_is_not_repeated(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000009")
    assert lab.app.ami is not None
    lab.app.ami.action_timeout = 0.5
    lab.sim.stall(3.0)  # actions are read but not run: callbridge cannot know what happened
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    requested = await lab.event("transfer.requested")
    transfer = lab.app.engine.transfers[requested.data()["transfer_id"]]
    await lab.until(lambda: transfer.state.value == "unknown", label="outcome unknown")
    lab.sim.drop_connections()
    failed = await lab.event("transfer.failed", transfer_id=transfer.id, timeout=10)
    assert failed.data()["reason"] == "ami_outcome_unknown"
    await asyncio.sleep(3.5)  # past the stall: nothing was re-sent
    assert not [c for c in lab.sim.channels() if "hotline-110" in c]
    assert agent in lab.sim.bridged_with(caller)  # the caller is still with the agent



async def test_threeway_into_a_hotline_served_by_a_local_queue(lab: Lab) -> None:
    """110 → 12345 (no trunk: 12345's own queue): the queue member's answer connects the originated leg."""
    caller, agent = await lab.answered_call("110", caller="13700000014")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("three_way", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="12345", category="non_police"))
    tid = reply["transfer_id"]
    await lab.event("threeway.started", transfer_id=tid)
    answered = await lab.event("transfer.answered", transfer_id=tid)
    assert answered.data()["agent"] == agent_endpoint(agent) and answered.data()["to_hotline"] == "12345"

    def twelve_agent() -> list[str]:  # caller — Local ;1 in the room — ;2 half — a 12345 agent
        halves = [c for c in lab.sim.bridged_with(caller) if c.startswith("Local/s@cb-to-12345") and c.endswith(";1")]
        return [p for h in halves for p in lab.sim.bridged_with(h[:-1] + "2") if p.startswith("PJSIP/agent100")]

    assert await lab.until(twelve_agent)
    assert agent in lab.sim.bridged_with(caller)  # the rule has agent_leaves: false — until the leave command
    await lab.app.service.handle(command("leave", call_id=call_id, agent=agent_endpoint(agent)))
    await lab.event("threeway.agent_left", transfer_id=tid)
    assert await lab.until(lambda: agent not in lab.sim.bridged_with(caller))
    assert twelve_agent()  # the caller stays with the 12345 agent
