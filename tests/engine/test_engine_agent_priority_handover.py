"""Agent identity in events, raising a waiting caller's priority, and the three-way hand-over deadline."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from callbridge.ami.actions import Action, ConfbridgeKick, Hangup, QueueChangePriorityCaller, Setvar
from callbridge.dialplan import parse_dialplan_text
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.engine.core import TransferRequest
from callbridge.engine.effects import Effect, Publish, SendActions, StartTimer
from callbridge.engine.transfer import TState
from callbridge.errors import CommandError
from tests.engine.pbx import CALLER, Chan, Pbx, example_plan


def actions_of(effects: Sequence[Effect]) -> list[Action]:
    return [a for e in effects if isinstance(e, SendActions) for a in e.actions]


def events_of(effects: Sequence[Effect]) -> list[DomainEvent]:
    return [e.event for e in effects if isinstance(e, Publish)]


def conf_headers(room: str) -> dict[str, str]:
    return {"Conference": room, "BridgeUniqueid": "conf", "BridgeType": "base", "BridgeTechnology": "softmix",
            "BridgeCreator": "ConfBridge", "BridgeName": room, "BridgeNumChannels": "3", "Admin": "No",
            "Muted": "No"}  # fmt: skip


# --- 1. the agent is named by its endpoint, whichever way it was given -----------------------------------


def test_dtmf_transfer_names_the_agent_by_endpoint_and_rings_back_its_interface() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "*1")
    [requested] = [e for e in pbx.published() if isinstance(e, ev.TransferRequested)]
    assert requested.agent == "agent1001"
    [batch] = pbx.sent()
    values = {a.variable: a.value for a in batch.actions if isinstance(a, Setvar)}
    assert values["__CB_AGENT"] == "agent1001"
    assert values["__CB_BACK"] == "PJSIP/agent1001"  # cb-back dials it: the interface stays
    assert pbx.engine.transfers["x1"].describe()["agent"] == "agent1001"


def test_commands_accept_the_interface_form_and_events_use_the_endpoint() -> None:
    pbx = Pbx()
    caller = pbx.call()
    pbx.answer_by(caller)
    pbx.take()
    with pytest.raises(CommandError):
        pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="PJSIP/agent1001",
                                                    to_hotline="999"), pbx.now)  # fmt: skip
    reply = pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="PJSIP/agent1001",
                                                        to_hotline="110", category="police"), pbx.now)  # fmt: skip
    events = events_of(pbx.engine.drain())
    refused = next(e for e in events if isinstance(e, ev.TransferRefused))
    requested = next(e for e in events if isinstance(e, ev.TransferRequested))
    assert (refused.agent, requested.agent, reply["agent"]) == ("agent1001", "agent1001", "agent1001")
    with pytest.raises(CommandError) as wrong_mode:  # the owner check compares endpoints, not spellings
        pbx.engine.complete(caller.linkedid, "PJSIP/agent1001", None, pbx.now)
    assert wrong_mode.value.code == "wrong_mode"


# --- 2. set_priority ------------------------------------------------------------------------------------


def test_set_priority_raises_a_waiting_caller_at_once() -> None:
    pbx = Pbx()
    caller = pbx.call()
    pbx.feed("QueueCallerJoin", {**caller.headers(), "Queue": "q-12345", "Position": "1", "Count": "1"})
    pbx.take()
    reply = pbx.engine.set_priority(caller.linkedid, 50, pbx.now, agent="PJSIP/agent1002", reason="elderly")
    assert reply["queue"] == "q-12345" and reply["priority"] == 50
    [action] = actions_of(pbx.engine.drain())
    assert action == QueueChangePriorityCaller(queue="q-12345", caller=caller.name, priority=50, immediate=True)
    pbx.engine.set_priority(caller.linkedid, 60, pbx.now, agent="agent1003")
    [prio] = [e for e in events_of(pbx.engine.drain()) if isinstance(e, ev.QueuePrioritySet)]
    assert (prio.queue, prio.priority, prio.agent, prio.hotline, prio.caller_num) == ("q-12345", 60, "agent1003",
                                                                                      "12345", CALLER)


@pytest.mark.parametrize(
    ("call", "agent", "priority", "code"),
    [
        ("nope", "agent1001", 10, "unknown_call"),
        ("talking", "agent1001", 10, "not_waiting"),
        ("waiting", "2101@sim", 10, "unauthorised"),  # a 110 agent cannot reorder 12345's queue
        ("waiting", "agent1001", 101, "invalid"),
    ],
)
def test_set_priority_refusals_never_reach_ami(call: str, agent: str, priority: int, code: str) -> None:
    pbx = Pbx()
    talking = pbx.call(seq=1)
    pbx.answer_by(talking)
    waiting = pbx.call(seq=2)
    pbx.feed("QueueCallerJoin", {**waiting.headers(), "Queue": "q-12345", "Position": "1", "Count": "1"})
    pbx.take()
    call_id = {"talking": talking.linkedid, "waiting": waiting.linkedid}.get(call, call)
    with pytest.raises(CommandError) as refused:
        pbx.engine.set_priority(call_id, priority, pbx.now, agent=agent)
    assert refused.value.code == code
    assert not [e for e in pbx.engine.drain() if hasattr(e, "actions")]


# --- 4. handover_timeout --------------------------------------------------------------------------------


def threeway_ready(pbx: Pbx) -> tuple[Chan, Chan]:
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "*3")  # r-12345-120-threeway, agent_leaves: true
    pbx.take()
    pbx.result("xfer:x1:start")
    return caller, agent


def test_the_hand_over_deadline_is_armed_when_the_room_is_ready() -> None:
    pbx = Pbx()
    threeway_ready(pbx)
    [timer] = [e for e in pbx.take() if isinstance(e, StartTimer) and e.key.startswith("handover:")]
    assert (timer.key, timer.seconds) == ("handover:x1", pbx.plan.engine.handover_timeout)


def test_destination_not_joined_by_the_deadline_stops_calling_in() -> None:
    pbx = Pbx()
    threeway_ready(pbx)
    leg = Chan("PJSIP/hotline-120-0000000a", "x1-leg0", "x1-leg0", CALLER, "cb-conf", "cb-x1")
    pbx.feed("Newchannel", leg.headers(state="Down"))
    pbx.feed("Newstate", leg.headers(state="Ringing"))
    pbx.take()
    pbx.engine.on_timer("handover:x1", pbx.now + 180)
    effects = pbx.engine.drain()
    [returned] = [e for e in events_of(effects) if isinstance(e, ev.TransferReturned)]
    assert returned.reason == "handover_timeout"
    hangups = actions_of(effects)
    assert hangups == [Hangup(channel=leg.name, cause=16)]  # the ringing leg, never the caller or the agent
    assert pbx.engine.transfers["x1"].state is TState.RETURNED
    # a failing leg after the deadline calls in no backup line
    pbx.feed("OriginateResponse", {"Response": "Failure", "Channel": "PJSIP/120@hotline-120", "Context": "cb-conf",
                                   "Exten": "cb-x1", "Reason": "5", "Uniqueid": "x1-leg0", "CallerIDNum": CALLER,
                                   "CallerIDName": ""})  # fmt: skip
    assert not pbx.sent()


def test_a_leg_answering_after_the_deadline_is_hung_up() -> None:
    pbx = Pbx()
    threeway_ready(pbx)
    pbx.take()
    pbx.engine.on_timer("handover:x1", pbx.now + 180)  # nothing rang yet: nothing to hang up
    assert not [e for e in pbx.engine.drain() if hasattr(e, "actions")]
    late = Chan("PJSIP/hotline-120-0000000b", "x1-leg0", "x1-leg0", CALLER, "cb-conf", "cb-x1")
    pbx.feed("ConfbridgeJoin", {**late.headers(), **conf_headers("cb-x1")})
    assert [a for b in pbx.sent() for a in b.actions] == [Hangup(channel=late.name, cause=16)]


def test_the_sending_agent_still_in_the_room_at_the_deadline_is_kicked() -> None:
    pbx = Pbx()
    _caller, agent = threeway_ready(pbx)
    leg = Chan("PJSIP/hotline-120-0000000a", "x1-leg0", "x1-leg0", CALLER, "cb-conf", "cb-x1")
    pbx.feed("ConfbridgeJoin", {**leg.headers(), **conf_headers("cb-x1")})
    pbx.result("xfer:x1:leave", "failed", "No Conference by that name found")  # the kick at the join failed
    pbx.take()
    pbx.engine.on_timer("handover:x1", pbx.now + 180)
    kick = actions_of(pbx.engine.drain())
    assert kick == [ConfbridgeKick(conference="cb-x1", channel=agent.name)]
    # once the agent has left, the deadline changes nothing
    pbx.feed("ConfbridgeLeave", {**agent.headers(), **conf_headers("cb-x1")})
    pbx.take()
    pbx.engine.on_timer("handover:x1", pbx.now + 181)
    assert not [e for e in pbx.engine.drain() if hasattr(e, "actions")]
    assert pbx.engine.transfers["x1"].state is TState.ANSWERED


# --- 5. the expert context reports its target like cb-to-<hotline> -------------------------------------


def test_rendered_expert_context_reports_the_target_before_queueing() -> None:
    text = render_extensions(example_plan())
    expert = text[text.index("[cb-expert-119]") :].split("\n\n")[0]
    target = "UserEvent(CallbridgeTarget,XferId: ${CB_XFER_ID},Hotline: 119)"
    assert target in expert and expert.index(target) < expert.index("Queue(q-119-expert,")


# --- 6. several rules match: the most specific wins ------------------------------------------------------


def test_a_command_takes_the_matching_rule_with_the_fewest_categories() -> None:
    plan = parse_dialplan_text(
        'categories: {police: P, fire: F, traffic: T}\n'
        'hotlines:\n  12345: {name: a, kind: service, dids: ["12345"], agent_queues: [q]}\n'
        '  110: {name: b, kind: emergency, agent_queues: [q110]}\n'
        "queues: {q: {members: [PJSIP/agent1001]}, q110: {members: [Local/1@sim]}}\n"
        "rules:\n"
        '  r-any: {from_hotline: "12345", to_hotline: "110", code: "*1", failure: [back_to_agent]}\n'
        '  r-wide: {from_hotline: "12345", to_hotline: "110", code: "*5", failure: [back_to_agent],'
        " categories: [police, fire, traffic]}\n"
        '  r-police: {from_hotline: "12345", to_hotline: "110", code: "*6", failure: [back_to_agent],'
        " categories: [police]}\n"
    )
    for category, rule in (("police", "r-police"), ("fire", "r-wide"), (None, "r-police")):
        pbx = Pbx(plan=plan)
        caller = pbx.call()
        pbx.answer_by(caller)
        reply = pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001",
                                                            to_hotline="110", category=category), pbx.now)  # fmt: skip
        assert reply["rule"] == rule, category
