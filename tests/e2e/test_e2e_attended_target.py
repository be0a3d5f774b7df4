"""Attended transfers reach their target on Asterisk: Atxfer dials a digits extension, never ``s``.

Asterisk "dials" an AMI Atxfer's ``Exten`` as DTMF into the agent's channel; ``s`` dials nothing, so the
feature waits for digits from the agent's keypad and gives up (the simulator does the same). The engine
sends the destination's number, which the rendered ``cb-to-``/``cb-expert-`` contexts have; if a
consultation still never starts, the transfer fails and ``complete`` is refused instead of hanging the
agent up on the caller.
"""

from __future__ import annotations

import pytest

from callbridge.engine import transfer as tx
from callbridge.errors import CommandError
from tests.e2e.conftest import Lab, agent_endpoint, command


async def test_atxfer_dials_the_hotline_number_into_the_expert_context(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000021")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", mode="attended", category="fire"))  # fmt: skip
    ringing = await lab.event("transfer.ringing", transfer_id=reply["transfer_id"])
    assert ringing.data()["line"] == "q-119-expert"
    consult = [c for c in lab.sim.channels() if c.startswith("Local/119@cb-expert-119")]
    assert consult, lab.sim.channels()


async def test_a_consultation_that_never_starts_fails_and_complete_is_refused(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tx, "atxfer_exten", lambda t: "s")  # what callbridge sent before: no digits
    caller, agent = await lab.answered_call("12345", caller="13700000022")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", mode="attended", category="fire"))  # fmt: skip
    with pytest.raises(CommandError) as refused:
        await lab.app.service.handle(command("complete", call_id=call_id, agent=agent_endpoint(agent)))
    assert refused.value.code == "not_consulting"
    failed = await lab.event("transfer.failed", transfer_id=reply["transfer_id"], timeout=8.0)
    assert failed.data()["reason"] == "no_consultation"
    assert not [c for c in lab.sim.channels() if "@cb-expert-119" in c]
    assert agent in lab.sim.bridged_with(caller)  # the caller is still with the agent, never dropped
    assert not lab.of_type("transfer.completed") and not lab.of_type("transfer.answered")


async def test_the_expert_consulted_is_shown_the_callers_number(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000023")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", mode="attended", category="fire"))  # fmt: skip
    ringing = await lab.event("transfer.ringing", transfer_id=reply["transfer_id"])
    assert ringing.data()["connected_num"] == "13700000023"  # not the sending agent's number


async def test_status_of_a_call_gives_its_details(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000024")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    status = await lab.app.service.handle(command("status", call_id=call_id))
    call = status["call"]
    assert (call["call_id"], call["hotline"], call["caller_num"], call["answered"]) == (
        call_id, "12345", "13700000024", True)  # fmt: skip
    assert call["agent"] == agent_endpoint(agent) and caller in call["channels"] and agent in call["channels"]
    assert (await lab.app.service.handle(command("status", call_id="no-such-call")))["call"] is None


async def test_a_busy_threeway_leg_is_reported_busy(lab: Lab) -> None:
    """The simulator answers a busy Originate as Asterisk 22 does (Reason 0, the cause on the Hangup)."""
    lab.sim.set_trunk("hotline-120", "busy")
    _caller, agent = await lab.answered_call("12345", caller="13700000025")
    lab.sim.agent_press(agent_endpoint(agent), "*3")  # r-12345-120-threeway: backup_line, back_to_agent
    backup = await lab.event("transfer.backup_line", to_hotline="120")
    assert (backup.data()["reason"], backup.data()["failed_line"]) == ("busy", "PJSIP/120@hotline-120")
