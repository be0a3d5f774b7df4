"""The consoles' picture from the events alone (pure): a hand-over pops at the destination desk before its
phone rings, the banner while talking, the feedback on the sender's side (and, from another centre, which
agent answered there or that the caller gave up), queues by priority, nuisance."""

from __future__ import annotations

from typing import Any

from callbridge.calls.events import CallAnswered, CallEnded, CallOffered, CallRinging, QueueJoined, QueueLeft
from callbridge.centres.events import HandoverAbandoned, HandoverAnswered, HandoverBound, HandoverFailed
from callbridge.engine.events import (
    NuisanceFlagged,
    QueuePrioritySet,
    TransferAnswered,
    TransferRequested,
    TransferReturned,
)
from callbridge.store.feedback import HandoverFeedback
from callbridge.web.console_state import ConsoleState, Desk

T = 1_790_000_000.0
X = {"transfer_id": "x1", "from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000",
     "agent": "agent1001", "category": "police", "ticket": "JJ-1", "summary": "fight", "mode": "blind"}  # fmt: skip
SENDER = Desk("agent1001", "12345")
RECEIVER = Desk("agent2101", "110")
OTHER = Desk("agent2201", "119")


def answered_at_12345(state: ConsoleState) -> None:
    state.feed([
        CallOffered(ts=T, call_id="c1", hotline="12345", caller_num="13800138000", caller_name="张三"),
        QueueJoined(ts=T + 1, call_id="c1", hotline="12345", queue="q-12345"),
        CallRinging(ts=T + 2, call_id="c1", hotline="12345", agent="agent1001"),
        CallAnswered(ts=T + 4, call_id="c1", hotline="12345", agent="PJSIP/agent1001"),
        QueueLeft(ts=T + 4, call_id="c1", hotline="12345", queue="q-12345"),
    ])  # fmt: skip


def test_the_hand_over_pops_at_the_destination_before_its_phone_rings() -> None:
    state = ConsoleState("normal")
    answered_at_12345(state)
    call = state.view(SENDER, T + 10)["call"]
    assert (call["caller_num"], call["caller_name"], call["state"]) == ("13800138000", "张三", "talking")
    assert call["wait_s"] == 3.0  # queued to answered
    assert state.view(RECEIVER, T + 10)["incoming"] == []

    state.feed([TransferRequested(ts=T + 20, call_id="c1", hotline="12345", source="command", **X)])
    pops = state.view(RECEIVER, T + 20)["incoming"]
    assert [(p["transfer_id"], p["agent"], p["ticket"], p["summary"]) for p in pops] == [
        ("x1", "agent1001", "JJ-1", "fight")]  # fmt: skip
    assert state.view(RECEIVER, T + 20)["call"] is None  # nothing rings at 110 yet
    assert state.view(OTHER, T + 20)["incoming"] == []  # 119 is not concerned
    sender = state.view(SENDER, T + 20)
    assert sender["outgoing"]["state"] == "requested" and sender["call"]["category"] == "police"

    state.feed([CallRinging(ts=T + 21, call_id="c1", hotline="12345", agent="agent2101")])
    ringing = state.view(RECEIVER, T + 21)
    assert ringing["call"]["state"] == "ringing" and ringing["incoming"][0]["transfer_id"] == "x1"

    state.feed([CallAnswered(ts=T + 23, call_id="c1", hotline="12345", agent="agent2101"),
                TransferAnswered(ts=T + 23, call_id="c1", hotline="12345", answered_by="agent2101", **X)])  # fmt: skip
    talking = state.view(RECEIVER, T + 30)
    assert talking["call"]["state"] == "talking" and talking["received_from"]["from_hotline"] == "12345"
    assert talking["incoming"] == [] and [h["transfer_id"] for h in talking["received"]] == ["x1"]
    assert state.view(SENDER, T + 30)["call"] is None  # the caller is with 110 now

    state.feed([HandoverFeedback(ts=T + 60, call_id="c1", hotline="110", transfer_id="x1", from_hotline="12345",
                                 to_hotline="110", outcome="dispatched", agent="agent2101")])  # fmt: skip
    sent = state.view(SENDER, T + 60)["sent"]
    assert [(h["transfer_id"], [f["outcome"] for f in h["feedback"]]) for h in sent] == [("x1", ["dispatched"])]
    state.feed([CallEnded(ts=T + 90, call_id="c1", hotline="12345")])
    assert state.view(RECEIVER, T + 90)["call"] is None and state.view(SENDER, T + 90)["sent"][0]["state"] == "answered"


def test_supervisors_see_queues_by_priority_and_the_nuisance_list() -> None:
    state = ConsoleState("normal")
    state.feed([
        CallOffered(ts=T, call_id="a", hotline="110", caller_num="13900000001"),
        QueueJoined(ts=T, call_id="a", hotline="110", queue="q-110"),
        CallOffered(ts=T + 5, call_id="b", hotline="110", caller_num="13900000002"),
        QueueJoined(ts=T + 5, call_id="b", hotline="110", queue="q-110"),
        CallOffered(ts=T + 6, call_id="c", hotline="110", caller_num="13900000003"),
        QueueJoined(ts=T + 6, call_id="c", hotline="110", queue="q-110"),
        NuisanceFlagged(ts=T + 7, hotline="110", caller_num="13900000003", count=9),
        QueuePrioritySet(ts=T + 8, call_id="b", hotline="110", queue="q-110", priority=10),
        QueueLeft(ts=T + 9, call_id="c", hotline="110", queue="q-110"),
    ])  # fmt: skip
    sup = state.view(Desk("agent2191", "110", "supervisor"), T + 20)
    waiting = [(w["call_id"], w["priority"], w["wait_s"]) for w in sup["queues"]["q-110"]]
    assert waiting == [("b", 10, 15.0), ("a", 0, 20.0)]
    assert [n["caller_num"] for n in sup["nuisance"]] == ["13900000003"]
    assert "queues" not in state.view(RECEIVER, T + 20)  # an agent's desk has no supervisor view
    state.feed([CallRinging(ts=T + 21, call_id="c", hotline="110", agent="agent2101")])
    assert state.view(RECEIVER, T + 21)["call"]["nuisance"] is True


# --- a hand-over to another centre: that centre's word on the call, on the sender's "sent" list -----------

#: What the 110 centre's daemon publishes of the sender's hand-over (its own call b1; the sender's call c1).
REMOTE = {k: X[k] for k in ("transfer_id", "from_hotline", "to_hotline", "caller_num", "agent", "category", "ticket")}
SUPERVISOR_12345 = Desk("agent1091", "12345", "supervisor")


def handed_to_the_110_centre(state: ConsoleState) -> None:
    """The 12345 side: requested, the 110 PBX answers the trunk, and the 110 centre's binding comes back."""
    answered_at_12345(state)
    state.feed([
        TransferRequested(ts=T + 20, call_id="c1", hotline="12345", source="command", **X),
        TransferAnswered(ts=T + 21, call_id="c1", hotline="12345", answered_by="PJSIP/centre-110-00000001", **X),
        HandoverBound(ts=T + 21.5, call_id="b1", hotline="110", match="header", centre="c12345",
                      remote_call_id="c1", **REMOTE),
    ])  # fmt: skip


def sent_of(state: ConsoleState, desk: Desk, now: float) -> list[tuple[str, str, Any]]:
    return [(h["transfer_id"], h["status"], h["reached"]) for h in state.view(desk, now)["sent"]]


def test_the_sender_sees_which_110_agent_answered_its_hand_over_and_after_how_long() -> None:
    state = ConsoleState("normal")
    handed_to_the_110_centre(state)
    # the 110 PBX picked up the trunk (the local transfer.answered): the caller waits there, nobody answered yet
    assert sent_of(state, SENDER, T + 22) == [("x1", "waiting", None)]
    state.feed([HandoverAnswered(ts=T + 25, call_id="b1", hotline="110", answered_agent="agent2101", wait_s=3.5,
                                 remote_call_id="c1", match="header", **REMOTE)])  # fmt: skip
    answered = ("x1", "answered", {"outcome": "answered", "agent": "agent2101", "wait_s": 3.5, "reason": ""})
    assert sent_of(state, SENDER, T + 26) == [answered]
    assert sent_of(state, SUPERVISOR_12345, T + 26) == [answered]  # the supervisor's desk of the hotline too
    assert sent_of(state, OTHER, T + 26) == [] and sent_of(state, RECEIVER, T + 26) == []  # not their hotline
    # the feedback comes beside it; a later word on the call does not undo the first (as report --centres)
    state.feed([
        HandoverFeedback(ts=T + 60, call_id="b1", hotline="110", transfer_id="x1", from_hotline="12345",
                         to_hotline="110", outcome="dispatched", agent="agent2101"),
        HandoverAbandoned(ts=T + 61, call_id="b1", hotline="110", wait_s=9.0, reason="hangup", **REMOTE),
        CallEnded(ts=T + 90, call_id="c1", hotline="12345"),
    ])  # fmt: skip
    [sent] = state.view(SENDER, T + 90)["sent"]
    assert (sent["status"], sent["reached"], [f["outcome"] for f in sent["feedback"]]) == (
        "answered", answered[2], ["dispatched"])  # fmt: skip


def test_the_sender_sees_that_the_caller_gave_up_in_the_110_queue() -> None:
    state = ConsoleState("normal")
    handed_to_the_110_centre(state)
    state.feed([
        CallEnded(ts=T + 40, call_id="c1", hotline="12345"),
        HandoverAbandoned(ts=T + 40.2, call_id="b1", hotline="110", wait_s=18.4, reason="abandoned_in_queue",
                          remote_call_id="c1", match="header", **REMOTE),
    ])  # fmt: skip
    gave_up = {"outcome": "abandoned", "agent": "", "wait_s": 18.4, "reason": "abandoned_in_queue"}
    assert sent_of(state, SENDER, T + 41) == [("x1", "abandoned", gave_up)]


def test_a_hand_over_the_110_centre_never_got_is_failed_with_its_reason() -> None:
    state = ConsoleState("normal")
    answered_at_12345(state)
    state.feed([
        TransferRequested(ts=T + 20, call_id="c1", hotline="12345", source="command", **X),
        TransferReturned(ts=T + 35, call_id="c1", hotline="12345", reason="unreachable", **X),
    ])  # fmt: skip
    [sent] = state.view(SENDER, T + 36)["sent"]
    assert (sent["status"], sent["state"], sent["reason"], sent["reached"]) == ("failed", "returned", "unreachable",
                                                                                None)  # fmt: skip
    state.feed([HandoverFailed(ts=T + 36, hotline="110", reason="unreachable", outcome="returned", **REMOTE)])
    [sent] = state.view(SENDER, T + 37)["sent"]
    assert (sent["status"], sent["reason"]) == ("failed", "unreachable")


def test_at_the_110_centre_the_pop_goes_when_the_caller_gives_up_before_an_answer() -> None:
    state = ConsoleState("normal")
    state.feed([
        CallOffered(ts=T, call_id="b1", hotline="110", caller_num="13800138000"),
        QueueJoined(ts=T + 0.1, call_id="b1", hotline="110", queue="q-110"),
        HandoverBound(ts=T + 0.1, call_id="b1", hotline="110", match="header", centre="c12345",
                      remote_call_id="c1", **REMOTE),
    ])  # fmt: skip
    assert [p["transfer_id"] for p in state.view(RECEIVER, T + 1)["incoming"]] == ["x1"]
    state.feed([
        CallEnded(ts=T + 12, call_id="b1", hotline="110"),
        HandoverAbandoned(ts=T + 12, call_id="b1", hotline="110", wait_s=11.9, reason="abandoned_in_queue",
                          remote_call_id="c1", match="header", centre="c12345", **REMOTE),
    ])  # fmt: skip
    view = state.view(RECEIVER, T + 13)
    assert view["incoming"] == [] and view["received"] == []  # nobody will answer it: no pop, nothing received
