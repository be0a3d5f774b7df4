"""An MQTT ``transfer`` without ``mode`` takes the rule's mode, as the DTMF key does (issue 15, point 2)."""

from __future__ import annotations

from tests.e2e.conftest import Lab, agent_endpoint, command


async def test_transfer_without_mode_uses_the_rules_mode(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000031")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    # r-12345-119-fire-expert: mode attended, target expert
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", category="fire"))  # fmt: skip
    assert reply["mode"] == "attended"
    requested = await lab.event("transfer.requested", transfer_id=reply["transfer_id"])
    assert requested.data()["mode"] == "attended"
    await lab.event("transfer.ringing", transfer_id=reply["transfer_id"])
    assert [c for c in lab.sim.channels() if c.startswith("Local/119@cb-expert-119")]  # an Atxfer consultation
    assert agent in lab.sim.channels()  # the agent consults; a blind transfer would have dropped the agent leg


async def test_an_explicit_mode_still_overrides_the_rule(lab: Lab) -> None:
    caller, agent = await lab.answered_call("12345", caller="13700000032")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    assert lab.app.service is not None
    reply = await lab.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                 to_hotline="119", category="fire", mode="blind"))  # fmt: skip
    assert reply["mode"] == "blind"
