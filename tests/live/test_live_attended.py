"""Live PBX: transfers into the 119 expert queue: attended (completed, cancelled; issue 15, point 1) and blind,
and what the expert's phone is shown while it rings (cb-expert-seat).

Before the fix callbridge sent ``Atxfer Exten: s``: Asterisk dialled no digits ("Unable to acquire
target extension"), no consultation leg rang, and ``complete`` hung the agent up so the caller got a BYE.
"""

from __future__ import annotations

import pytest
from conftest import CALLER, Lab, header, never_bye
from livepbx import wait_for
from simtwin import hold_to_simulator

pytestmark = pytest.mark.live



def _to_the_expert(lab: Lab, mode: str) -> tuple[object, str, str, dict[str, str]]:
    """A call agent1003 answers, transferred (*mode*) into the 119 expert queue until the seat answered;
    the caller, call id, transfer id, and the seat's ``DialBegin`` (checked: it rang showing the citizen)."""
    lab.only_agent("q-12345", "agent1003")
    mark, invites = lab.recorder.mark(), len(lab.agents.received())
    caller, call_id = lab.call("12345")
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1003", "to_hotline": "119",
                                     "mode": mode, "category": "fire"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    ringing = lab.events.wait("transfer.ringing", transfer_id=tid)
    assert ringing["data"]["line"] == "q-119-expert"
    lab.events.wait("transfer.answered", transfer_id=tid)
    return caller, call_id, tid, _seat_shown_the_caller(lab, mark, invites)


def _seat_shown_the_caller(lab: Lab, mark: int, invites: int) -> dict[str, str]:
    """The expert's phone rang showing the citizen's number, not the sending agent's (agent1003): in
    Asterisk's DialBegin of the seat (cb-expert-seat, the expert queue's b()) and in the INVITE it received."""
    begins = lab.recorder.events(mark, "DialBegin")
    seat = [e for e in begins if e.get("DestChannel", "").startswith("PJSIP/agent2291-")]
    assert seat and seat[0].get("DestConnectedLineNum") == CALLER, seat
    invite = [m for m in lab.agents.received()[invites:] if m.lstrip().startswith("INVITE sip:agent2291")]
    shown = header(invite[0], "From") if invite else ""
    assert f"<sip:{CALLER}@" in shown and "1003" not in shown, invite[:1]  # neither the agent's number nor name
    return seat[0]


def _consulting(lab: Lab) -> tuple[object, str, str]:
    mark = lab.recorder.mark()
    caller, call_id, tid, seat = _to_the_expert(lab, "attended")
    channels = wait_for(lambda: (c := lab.cli("core show channels concise")) and "PJSIP/agent2291-" in c and c,
                        15, label="the 119 expert seat answers")  # fmt: skip
    assert "Local/119@cb-expert-119" in channels
    assert "1003" not in seat.get("DestConnectedLineName", ""), seat
    # and only the seat: the consulting agent's phone is shown the expert who answered, not the caller
    wait_for(lambda: [e for e in lab.recorder.events(mark, "NewConnectedLine")
                      if e.get("Channel", "").startswith("PJSIP/agent1003-") and e.get("ConnectedLineNum") == "2291"],
             10, label="the consulting agent is shown the expert")  # fmt: skip
    return caller, call_id, tid


def test_attended_transfer_completed_into_the_expert_queue(clean: Lab) -> None:
    lab = clean
    caller, call_id, tid = _consulting(lab)
    assert lab.command("complete", {"call_id": call_id, "agent": "agent1003"})["ok"]
    wait_for(lambda: "PJSIP/agent1003-" not in lab.cli("core show channels concise"), 15, label="agent leaves")
    channels = lab.cli("core show channels concise")
    assert "PJSIP/agent2291-" in channels and "PJSIP/carrier-" in channels, channels
    assert never_bye(caller)  # type: ignore[arg-type]
    assert not lab.events.of("transfer.failed", transfer_id=tid)
    hold_to_simulator(lab.events.of_call(call_id), call_id, "attended_119_expert", lab.root, CALLER)


def test_attended_transfer_cancelled_returns_the_caller_to_the_agent(clean: Lab) -> None:
    lab = clean
    caller, call_id, tid = _consulting(lab)
    assert lab.command("cancel", {"call_id": call_id, "agent": "agent1003"})["ok"]
    returned = lab.events.wait("transfer.returned", transfer_id=tid)
    assert returned["data"]["reason"] == "cancelled"
    wait_for(lambda: "PJSIP/agent2291-" not in lab.cli("core show channels concise"), 15, label="expert released")
    channels = lab.cli("core show channels concise")
    assert "PJSIP/agent1003-" in channels and "PJSIP/carrier-" in channels, channels
    assert "q-119-expert" in lab.cli("queue show q-119-expert")
    assert never_bye(caller)  # type: ignore[arg-type]


def test_blind_transfer_into_the_expert_queue_rings_the_seat_showing_the_caller(clean: Lab) -> None:
    """Blind into the expert queue: the queue caller is the citizen's own channel, so cb-expert-seat keeps
    its name and number; the expert's phone shows the citizen, and answers them."""
    caller, _call_id, _tid, _seat = _to_the_expert(clean, "blind")
    assert never_bye(caller)  # type: ignore[arg-type]
