"""Every transfer kind under AMI cuts (issue 17.4): attended start, its complete and cancel, three-way set-up.

The AMI connection between the daemon and the simulator is dropped at a random moment (seeded) while the
transfer's actions are on their way or just ran. After the reconnect and the resync, no Originate / Atxfer /
CancelAtxfer / completing Hangup has been executed twice by the PBX, and no transfer is left ``consulting``
unless the PBX really still has the consultation (the transfer resumed); otherwise it ended (completed,
returned, or failed with a reason). The issue asks for 100 cuts of each kind; a suite run does
:data:`CUTS` of each (seeded, so every run cuts at the same moments) to keep its time in seconds.
"""

from __future__ import annotations

import pytest

from callbridge.testing.lab import Lab, agent_endpoint, command
from callbridge.testing.transfer_cuts import (
    KINDS,
    CutTrap,
    consultation_alive,
    cut,
    end_call,
    run_cuts,
    settled,
    transfer_of,
)

CUTS = 6  # per kind and run (the probe: 100; see the module doc)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
async def test_every_transfer_kind_under_ami_cuts(lab: Lab, kind: str) -> None:
    outcomes, trap = await run_cuts(lab, kind, CUTS)
    assert not trap.twice(), trap.twice()
    assert sum(outcomes.values()) == CUTS
    print(kind, "cuts:", CUTS, "outcomes:", dict(outcomes), "actions executed:", sum(trap.seen.values()),
          "executed twice:", len(trap.twice()))


async def test_an_atxfer_whose_reply_was_lost_resumes_its_live_consultation(lab: Lab) -> None:
    """The connection drops right after the PBX ran the Atxfer (its reply lost): the resync finds the
    consultation leg in the target context and the transfer goes on consulting, instead of failing with
    ``ami_outcome_unknown`` while the consultation is live (issue 17, seen in 33 of 100 cut runs)."""
    trap = CutTrap(lab.sim)
    service = lab.app.service
    assert service is not None
    for n in range(3):
        caller, agent = await lab.answered_call("12345", caller=f"137000005{n:02d}")
        call_id = lab.sim.channel(caller).linkedid  # type: ignore[union-attr]
        who = {"call_id": call_id, "agent": agent_endpoint(agent)}
        await cut(lab, trap, "atxfer", "after", 0.0, lambda who=who: service.handle(
            command("transfer", **who, to_hotline="119", mode="attended", category="fire")))  # fmt: skip
        t = transfer_of(lab, call_id)
        assert await settled(lab, t, "attended") in ("consulting", "ringing", "answered"), t.history
        assert consultation_alive(lab, t) and t.route_channel, t.history
        await end_call(lab, caller, t)
    assert not trap.twice(), trap.twice()
