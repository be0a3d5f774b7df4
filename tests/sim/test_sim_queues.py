"""app_queue behaviour: strategies, penalties, pause, ring-no-answer retry, withdraw (manual clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.ami.framing import AmiMessage
from callbridge.dialplan.render_asterisk import render_expert_seat
from callbridge.sim.actions_info import queue_add, queue_pause, queue_withdraw
from callbridge.sim.config import lab_config
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(
        lab_config(agents=[{"name": f"agent{n}", "number": str(n), "answer_after": 1.0} for n in (1001, 1002, 1003)],
                   queues=[{"name": "support", "strategy": "linear", "timeout": 5, "retry": 1},
                           {"name": "hotline", "strategy": "ringall", "timeout": 5, "retry": 1}]),
        users=[AmiUser("t", "t")], manual_clock=True)
    await simulator.start()
    yield simulator
    await simulator.stop()
    assert simulator.errors == []


def _msg(**headers: str) -> AmiMessage:
    return AmiMessage(tuple(headers.items()))


def _add(sim: Simulator, queue: str, agent: str, penalty: int = 0) -> None:
    reply = queue_add(sim, _msg(Queue=queue, Interface=f"PJSIP/{agent}", MemberName=agent, Penalty=str(penalty)))
    assert reply.frames[0][-1] == ("Message", "Added interface to queue")


def _events(sim: Simulator) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    sim.subscribe(lambda e: out.append((e[0], dict(e[2]))))
    return out


async def test_linear_rings_members_in_order_and_skips_on_no_answer(sim: Simulator) -> None:
    events = _events(sim)
    sim.set_agent("agent1001", "noanswer")
    _add(sim, "support", "agent1001")
    _add(sim, "support", "agent1002")
    caller = sim.place_call("13800138000", "4008000300")
    await sim.advance(12)
    called = [h["Interface"] for name, h in events if name == "AgentCalled"]
    assert called[:2] == ["PJSIP/agent1001", "PJSIP/agent1002"]
    assert [h["Interface"] for name, h in events if name == "AgentRingNoAnswer"] == ["PJSIP/agent1001"]
    assert sim.bridged_with(caller) == [sim.channels_of("agent1002")[0].name]


async def test_ringall_rings_every_free_member_and_cancels_the_rest(sim: Simulator) -> None:
    events = _events(sim)
    sim.set_agent("agent1002", "answer", answer_after=0.5)
    _add(sim, "hotline", "agent1001")
    _add(sim, "hotline", "agent1002")
    caller = sim.place_call("13800138000", "0")
    sim.pbx.goto(caller, "internal", "queue-hotline", 1)
    await sim.advance(3)
    assert sorted(h["Interface"] for name, h in events if name == "AgentCalled") == [
        "PJSIP/agent1001", "PJSIP/agent1002"]
    assert sim.bridged_with(caller) == [sim.channels_of("agent1002")[0].name]
    assert [h["DialStatus"] for name, h in events if name == "DialEnd" and "agent1001" in h["DestChannel"]] == [
        "CANCEL"]


async def test_penalty_and_pause_decide_who_is_offered(sim: Simulator) -> None:
    events = _events(sim)
    _add(sim, "hotline", "agent1001", penalty=5)
    _add(sim, "hotline", "agent1002", penalty=0)
    _add(sim, "hotline", "agent1003", penalty=0)
    assert queue_pause(sim, _msg(Interface="PJSIP/agent1003", Paused="true", Reason="lunch")).frames[0][-1] == (
        "Message", "Interface paused successfully")
    caller = sim.place_call("13800138000", "0")
    sim.pbx.goto(caller, "internal", "queue-hotline", 1)
    await sim.advance(3)
    assert [h["Interface"] for name, h in events if name == "AgentCalled"] == ["PJSIP/agent1002"]
    pause = next(h for name, h in events if name == "QueueMemberPause")
    assert (pause["Interface"], pause["Paused"], pause["PausedReason"]) == ("PJSIP/agent1003", "1", "lunch")


async def test_withdraw_sends_the_caller_on(sim: Simulator) -> None:
    events = _events(sim)
    caller = sim.place_call("13800138000", "4008000300")
    await sim.advance(1)
    reply = queue_withdraw(sim, _msg(Queue="support", Caller=caller.name, WithdrawInfo="2001"))
    assert reply.frames[0][-1] == ("Message", "Withdraw requested successfully")
    again = queue_withdraw(sim, _msg(Queue="support", Caller=caller.name, WithdrawInfo="2002"))
    assert again.frames[0][-1] == ("Message", "Unable to request withdraw from queue: Already requested")
    await sim.advance(2)
    names = [name for name, _ in events]
    assert names.index("QueueCallerAbandon") < names.index("QueueCallerLeave")
    assert sim.channel_vars(caller)["QUEUESTATUS"] == "WITHDRAW"
    assert sim.channel_vars(caller)["QUEUE_WITHDRAW_INFO"] == "2001"
    assert sim.bridged_with(caller) == ["Local/2001@sim-00000000;1"]


async def test_member_rung_for_a_caller_who_hangs_up_is_free_for_the_next_caller(sim: Simulator) -> None:
    """Regression: cancelling a ringing attempt used to leave the rung member busy for ever."""
    sim.set_agent("agent1001", "answer", answer_after=3.0)
    _add(sim, "support", "agent1001")
    first = sim.place_call("13800138000", "4008000300")
    await sim.advance(1)  # agent1001 is ringing for the first caller
    assert sim.channels_of("agent1001"), "the agent should be ringing"
    sim.caller_hangup(first)
    await sim.advance(1)
    second = sim.place_call("13900139000", "4008000300")
    await sim.advance(6)
    assert sim.bridged_with(second) == [sim.channels_of("agent1001")[0].name]


_PREDIAL_PLAN = """
[from-trunk]
exten => 4008000300,1,Set(__CB_CALLER_NUM=13900000001)
 same => n,Set(__CB_ATTENDED={attended})
 same => n,Set(CALLERID(all)="Agent 1003" <1003>)
 same => n,Queue(support,t{options},,,30)
"""


@pytest.mark.parametrize(
    ("options", "attended", "shown"),
    [
        ("b(cb-expert-seat^s^1)", "1", ("13900000001", "")),  # attended: the sending agent's name is cleared
        ("b(cb-expert-seat^s^1)", "", ("13900000001", "Agent 1003")),  # blind: the queue caller's name stays
        ("", "1", ("1003", "Agent 1003")),  # no b(): the queue caller as it is
    ],
)
async def test_queue_runs_the_predial_handler_on_each_member_before_ringing_it(
    tmp_path: Path, options: str, attended: str, shown: tuple[str, str]
) -> None:
    """Queue's ``b()`` (the rendered expert queues' ``cb-expert-seat``) runs on the member's new channel
    before it is called: the seat rings showing ``CB_CALLER_NUM``, whatever the queue caller's own caller ID
    (an attended transfer's Local half carries the sending agent's). Without ``b()``: the caller's."""
    conf = tmp_path / "extensions.conf"
    plan = _PREDIAL_PLAN.format(options=options, attended=attended)
    conf.write_text(plan + "\n" + render_expert_seat(), encoding="utf-8")
    simulator = Simulator(lab_config(dialplan=str(conf), queues=[{"name": "support", "strategy": "ringall"}]),
                          users=[AmiUser("t", "t")], manual_clock=True)  # fmt: skip
    await simulator.start()
    try:
        events = _events(simulator)
        _add(simulator, "support", "agent1001")
        simulator.place_call("13800138000", "4008000300")
        await simulator.advance(3)
        begin = [h for name, h in events if name == "DialBegin" and h["DestChannel"].startswith("PJSIP/agent1001-")]
        name = begin[0]["DestConnectedLineName"] if begin else None
        assert [h["DestConnectedLineNum"] for h in begin] == [shown[0]] and name in (shown[1], shown[1] or "<unknown>")
        seat = [h for name, h in events if name == "Newexten" and h.get("Context") == "cb-expert-seat"]
        assert bool(seat) == bool(options) and all(h["Channel"] == begin[0]["DestChannel"] for h in seat)
    finally:
        await simulator.stop()
    assert simulator.errors == []
