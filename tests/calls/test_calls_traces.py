"""Every recorded Asterisk 22 trace, replayed through framing → decode → tracker, with its derived events."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.domain import EVENT_TYPES, DomainEvent
from callbridge.testing.replay import event_record, replay_events
from tests.calls.traces import full_name, of_type, replay_trace, replay_until, trace_events, trace_names
from tests.conftest import REPO

CALLER = "13800138000"
EXPECTED = {"01", "01a", "02", "03", "04", "05", "06", "07", "08", "09", "10", "13", "15", "16", "17", "18", "19",
            "20", "21"}  # fmt: skip


def test_every_scenario_of_the_readme_is_recorded(traces: Path) -> None:
    assert {n.split("_", 1)[0] for n in trace_names()} >= EXPECTED


@pytest.mark.parametrize("name", trace_names())
def test_every_trace_replays_into_well_formed_call_lives(name: str) -> None:
    derived, tracker = replay_trace(name)
    assert not tracker.calls and not tracker.channels, "every trace ends with all channels hung up"
    for ev in derived:
        assert EVENT_TYPES[ev.TYPE] is type(ev)
        orjson.dumps(event_record(ev))  # JSON-safe
    for call_id in {e.call_id for e in derived if e.TYPE.startswith("call.")}:
        life = [e.TYPE for e in derived if e.call_id == call_id and e.TYPE.startswith("call.")]
        assert life[0] == "call.offered" and life.count("call.offered") == 1, life
        assert life[-1] == "call.ended" and life.count("call.ended") == 1, life


def test_01_login_alone_derives_nothing() -> None:
    assert replay_trace(full_name("01"))[0] == []
    assert replay_trace(full_name("01a"))[0] == []


def test_02_two_originated_calls_bridged_by_ami() -> None:
    derived, _ = replay_trace(full_name("02"))
    assert [(e.TYPE, e.call_id) for e in of_type(derived, "call.offered")] == [
        ("call.offered", "lab-alice"), ("call.offered", "lab-bob")]  # fmt: skip
    _, mid = replay_until(full_name("02"), lambda e: isinstance(e, ami.BridgeEnter), nth=2)
    assert [p.name for p in mid.bridge_peers("Local/alice@sim-00000000;1")] == ["Local/bob@sim-00000001;1"]


def test_03_dial_to_a_local_phone_rings_and_answers_it() -> None:
    derived, _ = replay_trace(full_name("03"))
    assert [e.TYPE for e in derived] == ["call.offered", "call.ringing", "call.answered", "call.ended"]
    answered = of_type(derived, "call.answered")[0]
    assert isinstance(answered, ce.CallAnswered) and answered.agent == "2001@sim"


def test_04_blind_transfer_from_agent_to_12345_carries_the_caller_number() -> None:
    derived, _ = replay_trace(full_name("04"))
    (offered,) = of_type(derived, "call.offered")
    assert isinstance(offered, ce.CallOffered) and offered.caller_num == CALLER
    (xfer,) = of_type(derived, "call.transferred")
    assert isinstance(xfer, ce.CallTransferred)
    assert (xfer.kind, xfer.result, xfer.target, xfer.caller_num) == ("blind", "Success", "12345@internal", CALLER)
    assert xfer.transferer.startswith("PJSIP/agent1001-") and xfer.transferer_num == "1001"
    assert xfer.transferee.startswith("Local/caller@sim-")
    trunk = [e for e in of_type(derived, "call.answered") if isinstance(e, ce.CallAnswered)][-1]
    assert trunk.agent == "hotline-12345" and trunk.connected_num == CALLER, "the trunk leg shows the caller"
    assert derived.index(xfer) < derived.index(trunk)
    assert {e.call_id for e in derived} == {"lab-caller"}


def test_04_mid_call_state_and_queries() -> None:
    _, t = replay_until(full_name("04"), lambda e: isinstance(e, ami.BridgeEnter), nth=2)
    call = t.calls["lab-caller"]
    assert call.state == CallState.ANSWERED and call.caller_num == CALLER and call.agent == "agent1001"
    agent = t.channel_by_name("PJSIP/agent1001-00000000")
    assert agent is not None and agent.role == "agent"
    assert t.call_of_channel("PJSIP/agent1001-00000000") is call
    assert t.call_of_channel(agent.uniqueid) is call
    assert [p.name for p in t.parties("lab-caller")] == ["Local/caller@sim-00000004;1", "PJSIP/agent1001-00000000"]
    assert [p.name for p in t.bridge_peers("PJSIP/agent1001-00000000")] == ["Local/caller@sim-00000004;1"]
    _, t = replay_until(full_name("04"), lambda e: isinstance(e, ami.BlindTransfer))
    assert t.calls["lab-caller"].state == CallState.TRANSFERRING


def test_05_redirect_to_110_carries_the_number_and_is_no_transfer_event() -> None:
    derived, _ = replay_trace(full_name("05"))
    assert not of_type(derived, "call.transferred"), "Asterisk has no Redirect event"
    rung = [e for e in of_type(derived, "call.ringing") if isinstance(e, ce.CallRinging)]
    assert [r.agent for r in rung] == ["agent1002", "hotline-110"]
    assert rung[1].connected_num == CALLER and rung[1].caller_num == CALLER


def test_06_attended_transfer_names_the_agent_behind_the_local_hop() -> None:
    derived, _ = replay_trace(full_name("06"))
    (xfer,) = of_type(derived, "call.transferred")
    assert isinstance(xfer, ce.CallTransferred)
    assert (xfer.kind, xfer.result, xfer.caller_num) == ("attended", "Success", CALLER)
    assert xfer.transferer.startswith("PJSIP/agent1001-") and xfer.target.startswith("PJSIP/agent1002-")
    held = of_type(derived, "call.held")
    assert len(held) == 1 and derived.index(held[0]) < derived.index(xfer)
    _, t = replay_until(full_name("06"), lambda e: isinstance(e, ami.AttendedTransfer))
    peers = [p.name for p in t.bridge_peers("Local/caller@sim-00000006;1")]
    assert peers == ["PJSIP/agent1002-00000005"], "caller ↔ Local;1 … Local;2 ↔ agent1002 collapsed"
    assert t.calls["lab-caller"].state == CallState.ANSWERED


def _joined(derived: list[DomainEvent]) -> list[ce.ConferenceJoined]:
    return [e for e in derived if isinstance(e, ce.ConferenceJoined)]


def test_07_three_party_conference_without_the_announcer() -> None:
    derived, _ = replay_trace(full_name("07"))
    joined = _joined(derived)
    assert [(j.room, j.party_name, j.count) for j in joined] == [("room1", "p1", 1), ("room1", "p2", 2),
                                                                 ("room1", "p3", 3)]  # fmt: skip
    assert len(of_type(derived, "conference.started")) == 1 and len(of_type(derived, "conference.ended")) == 1
    assert len(of_type(derived, "conference.left")) == 3
    assert not any("CBAnn" in str(e.data()) for e in derived)
    _, t = replay_until(full_name("07"), lambda e: isinstance(e, ami.ConfbridgeList), nth=3)
    assert sorted(p.name for p in t.conferences["room1"].parties.values()) == ["p1", "p2", "p3"]


def test_08_threeway_conference_of_caller_agent_and_12345_trunk() -> None:
    derived, _ = replay_trace(full_name("08"))
    joined = _joined(derived)
    assert [j.room for j in joined] == ["3way"] * 3 and [j.count for j in joined] == [1, 2, 3]
    channels = sorted(j.channel.split("-")[0] for j in joined)
    assert channels == ["Local/caller@sim", "PJSIP/agent1001", "PJSIP/hotline"]
    trunk = next(j for j in joined if j.channel.startswith("PJSIP/hotline-12345-"))
    assert trunk.party_num == CALLER and trunk.call_id == "lab-third"
    _, t = replay_until(full_name("08"), lambda e: isinstance(e, ami.ConfbridgeJoin), nth=3)
    assert t.calls["lab-caller"].state == CallState.CONFERENCE and len(t.conferences["3way"].parties) == 3


def test_09_priority_caller_b_is_answered_before_caller_a() -> None:
    derived, _ = replay_trace(full_name("09"))
    answered = [e for e in of_type(derived, "call.answered") if isinstance(e, ce.CallAnswered)]
    assert [(a.call_id, a.agent, a.queue) for a in answered] == [
        ("lab-qB", "agent1002", "support"), ("lab-qA", "agent1003", "support")]  # fmt: skip
    _, t = replay_until(full_name("09"), lambda e: isinstance(e, ami.QueueEntry), nth=2)
    waiting = [(c.call_id or c.uniqueid, c.position, c.priority) for c in t.queues["support"].ordered_callers()]
    assert waiting == [("lab-qB", 1, 10), ("lab-qA", 2, 0)], "QUEUE_PRIO only from QueueEntry"
    members = of_type(derived, "queue.member_changed")
    assert {e.data()["change"] for e in members} == {"added", "status", "removed"}


def test_10_originated_trunk_call_carries_the_originate_callerid() -> None:
    derived, _ = replay_trace(full_name("10"))
    offered = {e.call_id: e for e in of_type(derived, "call.offered") if isinstance(e, ce.CallOffered)}
    assert offered["lab-trunk-a"].caller_num == CALLER and offered["lab-trunk-a"].endpoint == "hotline-12345"
    (ringing,) = of_type(derived, "call.ringing", "lab-trunk-b")
    assert isinstance(ringing, ce.CallRinging) and ringing.agent == "hotline-120" and ringing.connected_num == CALLER


def test_13_busy_target_loses_the_caller_despite_transfer_success() -> None:
    derived, _ = replay_trace(full_name("13"))
    (xfer,) = of_type(derived, "call.transferred")
    assert isinstance(xfer, ce.CallTransferred) and xfer.result == "Success"
    assert [e.data()["agent"] for e in of_type(derived, "call.answered")] == ["agent1001"], "the trunk never answered"
    (ended,) = of_type(derived, "call.ended")
    assert isinstance(ended, ce.CallEnded) and ended.cause == 17 and ended.caller_num == CALLER


def test_15_target_rings_but_never_answers() -> None:
    derived, _ = replay_trace(full_name("15"))
    assert [e.data()["agent"] for e in of_type(derived, "call.ringing")] == ["agent1001", "hotline-12345"]
    assert [e.data()["agent"] for e in of_type(derived, "call.answered")] == ["agent1001"]
    (ended,) = of_type(derived, "call.ended")
    assert isinstance(ended, ce.CallEnded) and ended.cause == 16
    _, t = replay_until(full_name("15"), lambda e: isinstance(e, ami.DialEnd) and e.dial_status == "NOANSWER")
    assert t.calls["lab-caller"].state == CallState.OFFERED, "the caller is back in the dialplan"


def test_16_originate_failures_leak_no_call() -> None:
    derived, tracker = replay_trace(full_name("16"))
    assert sorted({e.call_id or "" for e in derived}) == ["lab-orig-b", "lab-orig-c"], "no channel → no call"
    causes = [e.data()["cause"] for e in of_type(derived, "call.ended")]
    assert causes == [18, 19]
    assert not tracker.calls and not tracker.channels


def test_17_cancelled_atxfer_returns_the_agent_to_the_original_bridge() -> None:
    derived, _ = replay_trace(full_name("17"))
    assert not of_type(derived, "call.transferred")
    assert [e.TYPE for e in derived if e.TYPE in ("call.held", "call.unheld")] == ["call.held", "call.unheld"]
    assert not of_type(derived, "call.dtmf"), "the injected *,1 of CancelAtxfer are not key presses"
    _, before = replay_until(full_name("17"), lambda e: isinstance(e, ami.BridgeEnter), nth=2)
    original = before.channel_by_name("PJSIP/agent1001-0000000a")
    assert original is not None
    original_bridge = original.bridge_id
    _, after = replay_until(full_name("17"), lambda e: isinstance(e, ami.Unhold))
    agent = after.channel_by_name("PJSIP/agent1001-0000000a")
    assert agent is not None and agent.bridge_id == original_bridge
    assert [p.name for p in after.bridge_peers(agent.name)] == ["Local/caller@sim-00000005;1"]
    assert after.calls["lab-caller"].state == CallState.ANSWERED


def test_18_agent_dtmf_digits() -> None:
    derived, _ = replay_trace(full_name("18"))
    dtmf = [e for e in derived if isinstance(e, ce.CallDtmf)]
    assert [d.digit for d in dtmf] == ["*", "1", "5"], "relayed Local copies and PlayDTMF are left out"
    assert all(d.channel.startswith("PJSIP/agent1001-") and d.party == "agent" for d in dtmf)
    assert all(d.duration_ms == 120 and d.call_id == "lab-caller" for d in dtmf)


def test_19_withdraw_is_an_abandon_then_a_leave_and_priorities_follow_queue_status() -> None:
    derived, _ = replay_trace(full_name("19"))
    a_queue = [e.TYPE for e in derived if e.call_id == "lab-qA" and e.TYPE.startswith("queue.")]
    assert a_queue == ["queue.joined", "queue.abandoned", "queue.left"]
    (abandon_a,) = of_type(derived, "queue.abandoned", "lab-qA")
    assert isinstance(abandon_a, ce.QueueAbandoned) and (abandon_a.position, abandon_a.original_position) == (2, 1)
    _, t = replay_until(full_name("19"), lambda e: isinstance(e, ami.QueueEntry), nth=4)
    assert {c.call_id: c.priority for c in t.queues["support"].callers.values()} == {"lab-qA": 0, "lab-qB": 5}
    _, t = replay_until(full_name("19"), lambda e: isinstance(e, ami.QueueEntry), nth=6)
    waiting = [(c.call_id, c.position, c.priority) for c in t.queues["support"].ordered_callers()]
    assert waiting == [("lab-qB", 1, 10), ("lab-qA", 2, 0)]
    _, t = replay_until(full_name("19"), lambda e: isinstance(e, ami.QueueCallerLeave))
    assert [(c.call_id, c.position) for c in t.queues["support"].ordered_callers()] == [("lab-qB", 1)]


def test_20_restart_reports_and_clears_state() -> None:
    derived, _ = replay_trace(full_name("20"))
    restarts = [e for e in derived if isinstance(e, ce.PbxRestarted)]
    assert [(r.phase, r.restart) for r in restarts] == [("shutdown", True), ("booted", True)]


def test_20_shutdown_with_a_live_call_ends_it() -> None:
    events = [e for e in trace_events(full_name("20")) if not isinstance(e, ami.Hangup)]
    derived, tracker = replay_events(events)
    (ended,) = of_type(derived, "call.ended")
    assert isinstance(ended, ce.CallEnded) and ended.reason == "pbx_restart"
    shutdown = next(e for e in derived if isinstance(e, ce.PbxRestarted))
    assert shutdown.dropped_calls == 1 and derived.index(ended) < derived.index(shutdown)
    assert not tracker.calls and not tracker.channels and not tracker.bridges


def test_21_caller_abandons_after_six_seconds() -> None:
    derived, _ = replay_trace(full_name("21"))
    assert [e.TYPE for e in derived] == ["call.offered", "call.queued", "queue.joined", "queue.abandoned",
                                         "queue.left", "call.ended"]  # fmt: skip
    abandoned = derived[3]
    assert isinstance(abandoned, ce.QueueAbandoned)
    assert (abandoned.hold_s, abandoned.position, abandoned.original_position) == (6, 1, 1)
    assert abandoned.caller_num == CALLER and abandoned.queue == "support"
    ended = derived[-1]
    assert isinstance(ended, ce.CallEnded) and ended.cause == 0 and not ended.answered


def test_docs_describe_every_call_event_and_field() -> None:
    docs = (REPO / "docs" / "events.md").read_text(encoding="utf-8")
    for cls in ce.CALL_EVENT_TYPES:
        section = docs.split(f"### `{cls.TYPE}`", 1)
        assert len(section) == 2, f"{cls.TYPE} is not documented"
        body = section[1].split("### ", 1)[0]
        for field in dataclasses.fields(cls):
            if field.name not in ("ts", "call_id", "hotline"):
                assert f"`{field.name}`" in body, f"{cls.TYPE}.{field.name} is not documented"


def test_local_phone_without_anyone_behind_it_is_a_party() -> None:
    _, t = replay_until(full_name("19"), lambda e: isinstance(e, ami.BridgeEnter), nth=2)
    assert [p.name for p in t.parties("lab-qA")] == ["Local/callerA@sim-00000008;1", "Local/2001@sim-0000000a;1"]
    assert [p.name for p in t.bridge_peers("Local/callerA@sim-00000008;1")] == ["Local/2001@sim-0000000a;1"]


def test_parties_of_an_attended_transfer_skip_the_local_hop() -> None:
    _, t = replay_until(full_name("06"), lambda e: isinstance(e, ami.AttendedTransfer))
    names = [p.name for p in t.parties("lab-caller")]
    assert names[0] == "Local/caller@sim-00000006;1" and "PJSIP/agent1002-00000005" in names
    assert not any(n.startswith("Local/1002@internal") for n in names)


def test_09_queue_offers_a_caller_to_a_member_until_connected() -> None:
    _, t = replay_until(full_name("09"), lambda e: isinstance(e, ami.AgentCalled))
    assert t.queues["support"].offers == {"PJSIP/agent1002": "lab-qB"}
    _, t = replay_until(full_name("09"), lambda e: isinstance(e, ami.AgentConnect))
    assert t.queues["support"].offers == {}
    members = t.queues["support"].members
    assert members["PJSIP/agent1002"].status == 2 and not members["PJSIP/agent1002"].paused
