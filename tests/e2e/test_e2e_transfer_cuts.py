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

from callbridge.testing.lab import Lab
from callbridge.testing.transfer_cuts import KINDS, run_cuts

CUTS = 6  # per kind and run (the probe: 100; see the module doc)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
async def test_every_transfer_kind_under_ami_cuts(lab: Lab, kind: str) -> None:
    outcomes, trap = await run_cuts(lab, kind, CUTS)
    assert not trap.twice(), trap.twice()
    assert sum(outcomes.values()) == CUTS
    print(kind, "cuts:", CUTS, "outcomes:", dict(outcomes), "actions executed:", sum(trap.seen.values()),
          "executed twice:", len(trap.twice()))
