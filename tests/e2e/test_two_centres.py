"""Two centres end to end (issue 21): a hand-over crosses from the 12345 centre's PBX and daemon to the 110
centre's, over the inter-centre trunk (simulated) and two bridged mosquitto brokers (real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.centres.events import HandoverBound
from tests.e2e.conftest import CALLER, agent_endpoint, command
from tests.e2e.two_centres_lab import TwoCentres, open_two_centres

pytestmark = pytest.mark.mosquitto


async def transfer_to_110(pair: TwoCentres, caller: str = CALLER, ticket: str = "GD-2026-0001") -> str:
    """A citizen's call answered at 12345, handed over to 110 by command: the transfer id."""
    a = pair.c12345.lab
    chan, agent = await a.answered_call("12345", caller=caller)
    call_id = a.sim.channel(chan).linkedid  # type: ignore[union-attr]
    assert a.app.service is not None
    result = await a.app.service.handle(command("transfer", call_id=call_id, agent=agent_endpoint(agent),
                                                to_hotline="110", category="police", ticket=ticket,
                                                summary="邻居家传出呼救声"))  # fmt: skip
    return str(result["transfer_id"])


async def test_the_hand_over_binds_by_header_and_the_110_pop_carries_its_data(tmp_path: Path) -> None:
    async with open_two_centres(tmp_path) as pair:
        xfer = await transfer_to_110(pair)
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
