"""Call behaviour of the simulator on its manual clock: dialplan, queues, transfers, endpoints, DTMF."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from callbridge.ami.framing import AmiMessage
from callbridge.sim.actions import originate, redirect
from callbridge.sim.config import SimConfig, lab_config
from callbridge.sim.queues import Member
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.sim.world import Event

pytestmark = pytest.mark.timeout(30)

RENDERED = r"""
[globals]
LINE_TIMEOUT=20

[cb-inbound]
exten => 4008012345,1,NoOp(hotline 12345 from ${CALLERID(num)})
 same => n,Answer()
 same => n,Set(QUEUE_PRIO=${CB_PRIO})
 same => n,Queue(q12345,t,,,300)
 same => n,Hangup()

[cb-to-110]
exten => s,1,Set(__CB_XFER_ID=${CB_XFER_ID})
 same => n,Dial(PJSIP/110@trunk-110-main,${LINE_TIMEOUT})
 same => n,GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)
 same => n,UserEvent(CbLineFailed,line: main,status: ${DIALSTATUS})
 same => n,Dial(PJSIP/110@trunk-110-backup,${LINE_TIMEOUT})
 same => n,GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)
 same => n,Goto(cb-back,s,1)
 same => n(done),Hangup()
exten => 110,1,Goto(s,1)

[cb-back]
exten => s,1,Dial(PJSIP/${CB_AGENT},15)
 same => n,Hangup()

[cb-conf]
exten => _X.,1,Answer()
 same => n,ConfBridge(${EXTEN},cb_bridge,cb_user)
 same => n,Hangup()

[cb-agents]
exten => _100X,1,Dial(PJSIP/agent${EXTEN},30)
 same => n,Hangup()

[cb-hold]
exten => s,1,Answer()
 same => n,MusicOnHold(default)

[cb-to-12345]
exten => s,1,Queue(q12345,t,,,300)
 same => n,Hangup()
"""


def _config(**extra: object) -> SimConfig:
    return lab_config(
        agents=[{"name": f"agent{n}", "number": str(n), "answer_after": 1.0} for n in (1001, 1002, 1003)],
        trunks=[{"name": "trunk-110-main", "number": "110"}, {"name": "trunk-110-backup", "number": "110"}],
        queues=[{"name": "q12345", "strategy": "ringall", "timeout": 15, "retry": 2}],
        inbound_context="cb-inbound",
        **extra,
    )


@pytest.fixture
async def sim(tmp_path: object) -> AsyncIterator[Simulator]:
    path = pathlib.Path(str(tmp_path)) / "extensions.conf"
    path.write_text(RENDERED, encoding="utf-8")
    simulator = Simulator(_config(dialplan=str(path)), users=[AmiUser("t", "t")], manual_clock=True)
    await simulator.start()
    yield simulator
    await simulator.stop()
    assert simulator.errors == []


class Recorder:
    def __init__(self, sim: Simulator) -> None:
        self.events: list[Event] = []
        sim.subscribe(self.events.append)

    def named(self, name: str, **match: str) -> list[dict[str, str]]:
        out = []
        for ev_name, _priv, headers in self.events:
            d = dict(headers)
            if ev_name == name and all(d.get(k) == v for k, v in match.items()):
                out.append(d)
        return out


async def test_priority_caller_is_answered_first(sim: Simulator) -> None:
    rec = Recorder(sim)
    normal = sim.place_call("13900000001", "4008012345", variables={"CB_PRIO": "0"})
    await sim.advance(1)
    urgent = sim.place_call("13900000002", "4008012345", variables={"CB_PRIO": "10"})
    await sim.advance(1)
    assert sim.queue_order("q12345") == [urgent.name, normal.name]
    joins = rec.named("QueueCallerJoin", Queue="q12345")
    assert [(j["Channel"], j["Position"], j["Count"]) for j in joins] == [
        (normal.name, "1", "1"), (urgent.name, "1", "2")]
    # a member logs in: the urgent caller is offered first and ends up bridged with the agent
    sim.pbx.queues.queues["q12345"].members.append(__import__("callbridge.sim.queues", fromlist=["Member"]).Member(
        "PJSIP/agent1001", "Agent 1001"))
    sim.pbx.queues.distribute(sim.pbx.queues.queues["q12345"])
    await sim.advance(2)
    agent = sim.channels_of("agent1001")[0]
    assert sim.bridged_with(urgent) == [agent.name]
    assert rec.named("AgentConnect", Channel=urgent.name)[0]["Interface"] == "PJSIP/agent1001"
    assert sim.queue_order("q12345") == [normal.name]


async def test_caller_abandons_queue(sim: Simulator) -> None:
    rec = Recorder(sim)
    caller = sim.place_call("13800138000", "4008012345", hangup_after=6.0)
    await sim.advance(7)
    abandon = rec.named("QueueCallerAbandon", Channel=caller.name)[0]
    assert (abandon["Position"], abandon["OriginalPosition"], abandon["HoldTime"]) == ("1", "1", "6")
    assert rec.named("Hangup", Channel=caller.name)[0]["Cause"] == "0"
    assert caller.name not in sim.channels()


async def _caller_with_agent(sim: Simulator) -> tuple[str, str]:
    """A call from 13800138000 bridged with agent1001 (dialled from cb-agents,1001)."""
    caller = sim.place_call("13800138000", "0", variables={})
    sim.pbx.goto(caller, "cb-agents", "1001", 1)
    await sim.advance(2)
    agent = sim.channels_of("agent1001")[0]
    assert sim.bridged_with(caller) == [agent.name]
    return caller.name, agent.name


def _set_handover(sim: Simulator, caller: str) -> None:
    for name, value in {"CB_XFER_ID": "x-1", "CB_AGENT": "agent1001"}.items():
        sim.pbx.assign(sim.channel(caller), name, value)


async def test_redirect_carries_the_callers_number_to_the_trunk(sim: Simulator) -> None:
    rec = Recorder(sim)
    caller, agent = await _caller_with_agent(sim)
    _set_handover(sim, caller)

    reply = redirect(sim, AmiMessage((("Action", "Redirect"), ("Channel", caller), ("Context", "cb-to-110"),
                                      ("Exten", "s"), ("Priority", "1"))))
    assert reply.frames[0][1] == ("Message", "Redirect successful")
    await sim.advance(3)
    trunk = sim.channels_of("trunk-110-main")[0]
    assert sim.bridged_with(caller) == [trunk.name]
    assert trunk.conn_num == "13800138000"  # what PJSIP sends as From/PAI
    assert sim.channel_vars(trunk)["CB_XFER_ID"] == "x-1"  # __ inheritance reaches the outbound leg
    assert agent not in sim.channels()  # the agent leg was hung up
    assert rec.named("Hangup", Channel=agent)[0]["Cause"] == "16"


async def test_trunk_down_falls_back_to_backup_line(sim: Simulator) -> None:
    rec = Recorder(sim)
    sim.set_trunk("trunk-110-main", "down")
    caller, _agent = await _caller_with_agent(sim)
    _set_handover(sim, caller)
    sim.pbx.detach(sim.channel(caller))  # type: ignore[arg-type]
    sim.pbx.goto(sim.channel(caller), "cb-to-110", "s", 1)  # type: ignore[arg-type]
    await sim.advance(3)
    failed = rec.named("UserEvent", UserEvent="CbLineFailed")
    assert failed and failed[0]["status"] == "CHANUNAVAIL"
    backup = sim.channels_of("trunk-110-backup")[0]
    assert sim.bridged_with(caller) == [backup.name]


async def test_busy_and_unanswered_lines_return_to_the_agent(sim: Simulator) -> None:
    rec = Recorder(sim)
    sim.set_trunk("trunk-110-main", "busy")
    sim.set_trunk("trunk-110-backup", "noanswer")
    caller, _agent = await _caller_with_agent(sim)
    _set_handover(sim, caller)
    chan = sim.channel(caller)
    assert chan is not None
    sim.pbx.detach(chan)
    sim.pbx.goto(chan, "cb-to-110", "s", 1)
    await sim.advance(25)
    statuses = [e["DialStatus"] for e in rec.named("DialEnd", Channel=caller)]
    # first the agent, then main line busy, backup rings out after LINE_TIMEOUT, then back to the agent
    assert statuses == ["ANSWER", "BUSY", "NOANSWER", "ANSWER"]
    busy_leg = rec.named("HangupRequest", Cause="17")[0]
    assert busy_leg["TechCause"] == "486"
    agent = sim.channels_of("agent1001")[-1]
    assert sim.bridged_with(caller) == [agent.name]


async def test_agent_keys_are_dtmf_events_and_relayed(sim: Simulator) -> None:
    rec = Recorder(sim)
    caller, agent = await _caller_with_agent(sim)
    sim.agent_press("agent1001", "5")
    await sim.advance(1)
    begin = rec.named("DTMFBegin", Channel=agent)[0]
    end = rec.named("DTMFEnd", Channel=agent)[0]
    assert (begin["Digit"], begin["Direction"], end["DurationMs"]) == ("5", "Received", "120")
    assert rec.named("DTMFEnd", Channel=caller)[0]["Direction"] == "Sent"


async def test_three_way_conference_then_agent_leaves(sim: Simulator) -> None:
    rec = Recorder(sim)
    caller, agent = await _caller_with_agent(sim)

    redirect(sim, AmiMessage((("Channel", caller), ("Context", "cb-conf"), ("Exten", "777"),
                              ("ExtraChannel", agent), ("ExtraContext", "cb-conf"), ("ExtraExten", "777"))))
    originate(sim, AmiMessage((("Channel", "PJSIP/110@trunk-110-main"), ("Context", "cb-conf"), ("Exten", "777"),
                               ("CallerID", "<13800138000>"), ("Async", "true"))))
    await sim.advance(3)
    room = sim.pbx.confs.rooms["777"]
    assert len(room.users) == 3 and room.bridge.num_channels == 4  # + the hidden announcer
    sim.hangup(agent)
    await sim.advance(1)
    trunk = sim.channels_of("trunk-110-main")[0]
    assert sorted(sim.bridged_with(caller)) == [trunk.name]
    assert [e["Conference"] for e in rec.named("ConfbridgeLeave", Channel=agent)] == ["777"]


async def test_originate_to_unknown_endpoint_fails_at_once(sim: Simulator) -> None:
    rec = Recorder(sim)

    originate(sim, AmiMessage((("ActionID", "a1"), ("Channel", "PJSIP/1@nowhere"), ("Context", "cb-hold"),
                               ("Exten", "s"), ("Async", "true"), ("ChannelId", "want-id"))))
    await sim.advance(0.1)
    resp = rec.named("OriginateResponse")[0]
    assert (resp["Response"], resp["Reason"], resp["Channel"], resp["Uniqueid"]) == (
        "Failure", "0", "PJSIP/1@nowhere", "want-id")
    assert rec.named("Newchannel") == []


async def test_queue_answer_brings_an_originated_local_half_up(sim: Simulator) -> None:
    """Asterisk answers the queue caller when a member answers; a Local ;2 answering brings its ;1 up.

    A three-way into a hotline served by a local queue depends on it: the originated ``Local/…;1`` only
    enters the conference room once the queue member has answered its ``;2`` half.
    """
    rec = Recorder(sim)
    sim.handlers["originate"](sim, AmiMessage((
        ("Action", "Originate"), ("Channel", "Local/s@cb-to-12345"), ("Context", "cb-conf"), ("Exten", "4242"),
        ("Priority", "1"), ("CallerID", "<13900000009>"), ("ChannelId", "leg-1"), ("Async", "true"))))
    await sim.advance(1)
    two = next(sim.channel(c) for c in sim.channels() if c.endswith(";2"))
    assert two is not None and sim.queue_order("q12345") == [two.name]
    queue = sim.pbx.queues.queues["q12345"]
    queue.members.append(Member("PJSIP/agent1001", "Agent 1001"))
    sim.pbx.queues.distribute(queue)
    await sim.advance(3)
    agent = sim.channels_of("agent1001")[0]
    assert sim.bridged_with(two) == [agent.name]
    one = sim.channel(two.name[:-1] + "1")
    assert one is not None and one.state_desc == "Up"
    assert rec.named("OriginateResponse", Response="Success")
    assert rec.named("ConfbridgeJoin", Conference="4242", Channel=one.name)


async def test_atxfer_consultation_leg_inherits_the_transferers_handover_variables(sim: Simulator) -> None:
    """As Asterisk's dial_transfer: the transferer's ``__`` variables reach the Local pair it dials."""
    rec = Recorder(sim)
    caller, agent = await _caller_with_agent(sim)
    sim.pbx.assign(sim.channel(agent), "__CB_XFER_ID", "x-9")  # type: ignore[arg-type]
    reply = sim.handlers["atxfer"](sim, AmiMessage((("Action", "Atxfer"), ("Channel", agent),
                                                    ("Context", "cb-to-110"), ("Exten", "110"))))  # fmt: skip
    assert reply.frames[0][0] == ("Response", "Success")
    await sim.advance(1)
    halves = [c for c in sim.channels() if c.startswith("Local/110@cb-to-110")]
    assert len(halves) == 2 and all(sim.channel_vars(h)["CB_XFER_ID"] == "x-9" for h in halves)
    trunk = sim.channels_of("trunk-110-main")[0]
    assert sim.channel_vars(trunk)["CB_XFER_ID"] == "x-9"  # and on to the consultation's outbound leg
    assert rec.named("VarSet", Variable="CB_XFER_ID", Value="x-9")
    assert caller in sim.channels()


async def test_atxfer_to_exten_s_dials_nothing_and_gives_up_like_asterisk(sim: Simulator) -> None:
    """Asterisk dials Atxfer's Exten as DTMF: ``s`` is no digit, the feature collects no target, waits
    transferdigittimeout and takes the agent off hold; the AMI reply was a success all the same."""
    rec = Recorder(sim)
    caller, agent = await _caller_with_agent(sim)
    reply = sim.handlers["atxfer"](sim, AmiMessage((("Action", "Atxfer"), ("Channel", agent),
                                                    ("Context", "cb-to-110"), ("Exten", "s"))))  # fmt: skip
    assert reply.frames[0][0] == ("Response", "Success")
    await sim.advance(1)
    assert rec.named("Hold", Channel=agent) and not rec.named("Unhold", Channel=agent)
    await sim.advance(3)
    assert rec.named("Unhold", Channel=agent)
    assert not [c for c in sim.channels() if "@cb-to-110" in c]
    assert sim.bridged_with(caller) == [agent]
