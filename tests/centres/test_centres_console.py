"""Two centres (issue 21): the consoles of both centres from the hand-over events (pure: events in, views out)."""

from __future__ import annotations

from callbridge.calls.events import CallAnswered, CallOffered
from callbridge.centres.events import HandoverBound, HandoverFailed
from callbridge.engine.events import TransferRequested
from callbridge.web.console_state import ConsoleState, Desk

XFER = "a1b2c3d4e5f6"
FIELDS = {"transfer_id": XFER, "from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000",
          "agent": "agent1001", "category": "police", "ticket": "GD-0001", "centre": "c12345"}  # fmt: skip


def test_the_110_agent_answering_a_bound_call_sees_the_hand_over_with_its_match() -> None:
    s = ConsoleState()
    s.feed([CallOffered(ts=1.0, call_id="c110.1", hotline="110", caller_num="13800138000"),
            HandoverBound(ts=1.1, call_id="c110.1", hotline="110", match="caller_number", **FIELDS)])  # fmt: skip
    incoming = s.view(Desk("agent2101", "110"), now=2.0)["incoming"]
    assert [(h["transfer_id"], h["state"], h["match"]) for h in incoming] == [(XFER, "bound", "caller_number")]
    s.feed([CallAnswered(ts=3.0, call_id="c110.1", hotline="110", agent="PJSIP/agent2101")])
    view = s.view(Desk("agent2101", "110"), now=4.0)
    pop = view["received_from"]
    assert (pop["ticket"], pop["agent"], pop["category"], pop["match"], pop["state"]) == (
        "GD-0001", "agent1001", "police", "caller_number", "answered")  # fmt: skip
    assert view["incoming"] == []


def test_the_sending_console_keeps_its_own_call_and_learns_the_match_and_a_failure() -> None:
    s = ConsoleState()
    own = {k: v for k, v in FIELDS.items() if k != "centre"}
    s.feed([TransferRequested(ts=1.0, call_id="c12345.1", hotline="12345", mode="blind", **own)])
    s.feed([HandoverBound(ts=2.0, call_id="c110.1", hotline="110", match="header", **FIELDS)])  # the peer's
    h = s.handovers[XFER]
    assert (h.call_id, h.state, h.match) == ("c12345.1", "requested", "header")
    s.feed([HandoverFailed(ts=3.0, hotline="110", outcome="returned", reason="unreachable", **FIELDS)])
    assert s.handovers[XFER].state == "failed"
