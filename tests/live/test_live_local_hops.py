"""Live PBX: the Local-hop answer race of q-120 (two seats behind ``Local/2301@sim`` and ``Local/2302@sim``,
``ringall``, both agents' phones on one SIPp answering after the same pause).

When both agents answer in the same millisecond, Asterisk answers both inner ``;2`` Dials and connects one
``;1`` (``Local/230x@sim-…;1 answered PJSIP/carrier-…``), hanging the other hop up. ``call.answered`` must
name the agent Asterisk connected — read from Asterisk's own log — and that agent's transfer, sent at once
on ``call.answered`` (before callbridge may have read the caller's BridgeEnter), is accepted, never refused
``not_a_party``. Several calls, so that the race (about one call in four here) is usually among them; every
call is checked whether it raced or not. The recordings ``live_q120_local_hops_*`` hold the race.
"""

from __future__ import annotations

import re

import pytest
from conftest import Lab, never_bye

pytestmark = pytest.mark.live

CALLS = 4


def _connected_seat(log: str) -> tuple[str, list[str]]:
    """The seat whose ``;1`` the queue connected, and the seats whose inner Dial was answered."""
    (seat,) = re.findall(r"app_queue\.c: Local/(\d+)@sim-\w+;1 answered PJSIP/carrier-", log)
    return seat, re.findall(r"app_dial\.c: PJSIP/agent(\d+)-\w+ answered Local/\d+@sim-\w+;2", log)


def test_call_answered_names_the_connected_seat_and_its_agent_may_transfer_at_once(clean: Lab) -> None:
    lab = clean
    raced = 0
    for _ in range(CALLS):
        start = len(lab.pbx.full_log())
        caller, call_id = lab.call("120")
        reply = lab.command("transfer", {"call_id": call_id, "agent": lab.answered_by, "to_hotline": "119",
                                         "mode": "blind", "category": "fire"})  # fmt: skip
        assert reply["ok"], str(reply)
        seat, inner = _connected_seat(lab.pbx.full_log()[start:])
        raced += len(inner) > 1
        assert lab.answered_by == f"agent{seat}", (lab.answered_by, seat, inner)
        assert len(lab.events.of("call.answered", call_id=call_id)) == 1
        tid = reply["result"]["transfer_id"]
        assert lab.events.wait("transfer.ringing", transfer_id=tid)["data"]["line"] == "PJSIP/119@hotline-119"
        assert never_bye(caller)
        lab.hang_up_everything()
        lab.events.wait("call.ended", call_id=call_id)
    print(f"q-120: {raced} of {CALLS} calls had both inner Dials answered")  # shown with -s
