"""A transfer whose start reply was lost is settled, never left "being transferred" (issue 17.4).

Over a real TCP AMI session to the simulator: the connection is dropped right after the PBX ran the
blind transfer's Redirect (its reply lost: ``ami_outcome_unknown``). While the daemon was away the
destination answered; the resync must read that from the PBX's picture and publish the outcome once,
instead of leaving the transfer ``routing`` for the rest of the call (seen in the one-key benchmark).
"""

from __future__ import annotations

from typing import Any

from callbridge.sim.replies import Reply
from callbridge.testing.lab import Lab, agent_endpoint, command
from callbridge.testing.transfer_cuts import CutTrap, cut, transfer_of


def _outcomes(lab: Lab, transfer_id: str) -> list[str]:
    names = ("TransferAnswered", "TransferFailed", "TransferReturned", "TransferCompleted")
    return [type(e).__name__ for e in lab.events
            if type(e).__name__ in names and getattr(e, "transfer_id", "") == transfer_id]  # fmt: skip


async def test_a_redirect_whose_reply_was_lost_is_answered_after_the_resync(lab: Lab) -> None:
    trap = CutTrap(lab.sim)
    service = lab.app.service
    assert service is not None
    caller, agent = await lab.answered_call("12345", caller="13700000701")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    who = {"call_id": call_id, "agent": agent_endpoint(agent)}
    await cut(lab, trap, "redirect", "after", 0.0, lambda: service.handle(
        command("transfer", **who, to_hotline="119", mode="blind", category="fire")))  # fmt: skip
    t = transfer_of(lab, call_id)
    assert t.history[1][2] == "unknown", t.history  # the reply was lost
    target = await lab.until(lambda: next(iter(set(lab.sim.bridged_with(caller)) - {agent}), None), label="answered")
    await lab.until(lambda: _outcomes(lab, t.id), timeout=3, label="outcome published")
    assert _outcomes(lab, t.id) == ["TransferAnswered"], (t.history, _outcomes(lab, t.id))
    assert t.state.value == "answered" and t.dest_channel == target, t.history
    [answered] = [e for e in lab.of_type("transfer.answered") if getattr(e, "transfer_id", "") == t.id]
    assert answered.data()["answered_by"] == target
    lab.sim.hangup(caller)
    await lab.until(lambda: t.done, label="closed")
    assert _outcomes(lab, t.id) == ["TransferAnswered", "TransferCompleted"], t.history
    assert not trap.twice(), trap.twice()


async def test_a_reply_that_never_comes_is_settled_by_the_timeout_and_frees_the_call(lab: Lab) -> None:
    """No cut, no reconnect: the PBX never answers the Redirect (it did not run it). After the AMI reply
    timeout the outcome is unknown, and no resync will come; ``engine.unknown_outcome_timeout`` (set by a
    dialplan reload) settles it from the live picture: failed with its reason, published once, the call
    free for a new transfer that then goes through."""
    city = lab.dialplans / "00-city.yaml"
    reloads = len(lab.of_type("dialplan.reloaded"))
    city.write_text(city.read_text(encoding="utf-8").replace(
        "  handover_timeout: 180\n", "  handover_timeout: 180\n  unknown_outcome_timeout: 0.5\n"), encoding="utf-8")
    await lab.until(lambda: len(lab.of_type("dialplan.reloaded")) > reloads, label="reloaded")
    assert lab.app.ami is not None
    lab.app.ami.action_timeout = 0.3
    redirect = lab.sim.handlers["redirect"]
    swallowed: list[str] = []

    def swallow_once(sim: Any, msg: Any) -> Any:
        if swallowed:
            return redirect(sim, msg)
        swallowed.append(msg.get("Channel"))
        return Reply()  # nothing runs, nothing is written back: the connection stays up

    lab.sim.handlers["redirect"] = swallow_once
    service = lab.app.service
    assert service is not None
    connected = len(lab.of_type("ami.connected"))
    caller, agent = await lab.answered_call("12345", caller="13700000702")
    call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
    who = {"call_id": call_id, "agent": agent_endpoint(agent)}
    await service.handle(command("transfer", **who, to_hotline="119", mode="blind", category="fire"))
    first = transfer_of(lab, call_id)
    await lab.until(lambda: first.done, timeout=4, label="settled without a reconnect")
    assert swallowed and first.history[-2][2] == "unknown", first.history
    assert first.state.value == "failed" and first.history[-1][3].startswith("ami_outcome_unknown"), first.history
    [failed] = [e for e in lab.of_type("transfer.failed") if getattr(e, "transfer_id", "") == first.id]
    assert failed.data()["reason"].startswith("ami_outcome_unknown")
    assert _outcomes(lab, first.id) == ["TransferFailed"]
    assert len(lab.of_type("ami.connected")) == connected  # no reconnect decided it
    again = await service.handle(command("transfer", **who, to_hotline="119", mode="blind", category="fire"))
    assert again["transfer_id"] != first.id
    await lab.until(lambda: set(lab.sim.bridged_with(caller)) - {agent}, label="second transfer answered")
