"""One-key number-carrying transfers through ``App`` + simulator over TCP."""

from __future__ import annotations

from typing import Any

import pytest

from callbridge.ami.framing import AmiMessage
from callbridge.errors import CommandError
from tests.e2e.conftest import CALLER, Lab, agent_endpoint, command


async def test_dtmf_one_key_12345_to_110_carries_the_callers_number(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345")
    lab.sim.agent_press(agent.split("/", 1)[1].rsplit("-", 1)[0], "*1")

    requested = await lab.event("transfer.requested")
    assert requested.also_hotlines() == ("110",)
    assert requested.data()["caller_num"] == CALLER and requested.data()["source"] == "dtmf"
    assert requested.data()["agent"] == agent_endpoint(agent)  # the endpoint name, as for commands
    answered = await lab.event("transfer.answered")
    # PBX side: the caller talks with the 110 trunk leg, which presents the caller's own number
    trunk = await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if "hotline-110" in c])
    leg = lab.sim.channel(trunk[0])
    assert leg is not None and leg.conn_num == CALLER
    handover = lab.sim.channel_vars(leg)
    assert handover["CB_XFER_ID"] == requested.data()["transfer_id"]
    assert handover["CB_CALLER_NUM"] == CALLER and handover["CB_FROM_HOTLINE"] == "12345"
    verified = await lab.event("transfer.number_verified")
    assert verified.data()["presented_num"] == CALLER
    assert answered.data()["transfer_id"] == requested.data()["transfer_id"]
    # the screen pop reached the destination before its agent answered
    order = [e.TYPE for e in lab.events]
    assert order.index("transfer.requested") < order.index("transfer.answered")
    # the call closes on both sides: recorded under the same correlation id (双边办结)
    lab.sim.caller_hangup(caller)
    completed = await lab.event("transfer.completed")
    assert completed.data()["transfer_id"] == requested.data()["transfer_id"] and completed.call_id == requested.call_id


async def test_reverse_110_to_12345_queues_the_caller_for_12345_agents(lab: Lab) -> None:
    caller, agent = await lab.answered_call("110", caller="13700000110")
    assert "agent21" in agent
    lab.sim.agent_press(agent_endpoint(agent), "*1")

    requested = await lab.event("transfer.requested", to_hotline="12345")
    assert requested.data()["from_hotline"] == "110" and requested.data()["category"] == "non_police"
    await lab.event("transfer.answered", to_hotline="12345")
    peers = await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if c.startswith("PJSIP/agent100")])
    assert agent not in lab.sim.channels()  # the 110 agent's leg was released
    assert lab.sim.channel_vars(caller)["CB_FROM_HOTLINE"] == "110"
    assert peers


async def test_unknown_code_and_second_agent_are_refused(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000001")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    with pytest.raises(CommandError) as not_party:
        await lab.app.service.handle(command("transfer", call_id=call_id, agent="agent1003" if "1003" not in agent
                                             else "agent1002", to_hotline="110", category="police"))
    assert not_party.value.code == "not_a_party"
    with pytest.raises(CommandError) as no_rule:
        await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                             to_hotline="110", category="water"))
    assert no_rule.value.code == "category_not_allowed"
    first = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="110", category="police", idempotency_key="k1"))
    again = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="110", category="police", idempotency_key="k1"))
    assert again["transfer_id"] == first["transfer_id"] and again["duplicate"] is True
    with pytest.raises(CommandError) as busy:
        await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                             to_hotline="110", category="police", idempotency_key="k2"))
    assert busy.value.code in ("call_busy", "not_a_party")
    await lab.event("transfer.answered", transfer_id=first["transfer_id"])
    assert len(lab.of_type("transfer.requested")) == 1
    assert len([c for c in lab.sim.channels() if "hotline-110" in c]) == 1


async def test_trunk_down_uses_the_backup_line(lab: Lab) -> None:
    lab.sim.set_trunk("hotline-110", "down")
    caller, agent = await lab.answered_call("12345", caller="13700000002")
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    backup = await lab.event("transfer.backup_line")
    assert backup.data()["reason"] == "unreachable" and backup.data()["failed_line"] == "PJSIP/110@hotline-110"
    await lab.event("transfer.answered")
    assert await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if "hotline-110-backup" in c])


async def test_no_answer_anywhere_goes_back_to_the_agent(lab: Lab) -> None:
    lab.sim.set_trunk("hotline-110", "down")
    lab.sim.set_trunk("hotline-110-backup", "noanswer")
    caller, agent = await lab.answered_call("12345", caller="13700000003")
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    returned = await lab.event("transfer.returned", timeout=15)
    assert returned.data()["reason"] == "noanswer"
    back = await lab.until(lambda: [c for c in lab.sim.bridged_with(caller) if agent_endpoint(agent) in c], 8)
    assert back  # the caller talks with the sending agent again: never dropped
    assert not lab.of_type("transfer.failed")


async def test_caller_hangs_up_half_way_ends_the_transfer_cleanly(lab: Lab) -> None:
    lab.sim.set_trunk("hotline-110", "noanswer")
    caller, agent = await lab.answered_call("12345", caller="13700000004")
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    await lab.event("transfer.ringing")
    lab.sim.caller_hangup(caller)
    failed = await lab.event("transfer.failed")
    assert failed.data()["reason"] == "caller_hangup"
    assert not lab.app.engine.active()


async def test_lost_caller_number_raises_the_mismatch_alarm(lab: Lab) -> None:
    """A peer bug loses the hand-over number and the transferer's ID leaks: callbridge notices."""
    setvar, redirect = lab.sim.handlers["setvar"], lab.sim.handlers["redirect"]

    def lossy_setvar(sim: Any, msg: Any) -> Any:
        if msg.get("Variable") == "__CB_CALLER_NUM":
            return setvar(sim, AmiMessage(tuple((k, "" if k == "Value" else v) for k, v in msg.headers)))
        return setvar(sim, msg)

    def leaky_redirect(sim: Any, msg: Any) -> Any:
        sim.pbx.assign(sim.channel(msg.get("Channel")), "CALLERID(num)", "1001")
        return redirect(sim, msg)

    lab.sim.handlers["setvar"], lab.sim.handlers["redirect"] = lossy_setvar, leaky_redirect
    _caller, agent = await lab.answered_call("12345", caller="13700000013")
    lab.sim.agent_press(agent_endpoint(agent), "*1")
    alarm = await lab.event("transfer.number_mismatch")
    assert alarm.data()["presented_num"] == "1001" and alarm.data()["caller_num"] == "13700000013"
    assert not lab.of_type("transfer.number_verified")
