"""Pure pieces: DTMF buffers, overflow hysteresis, nuisance windows, three-way and priority decisions."""

from __future__ import annotations

from callbridge.ami.actions import ConfbridgeKick, Originate, QueueWithdrawCaller, Redirect, Setvar
from callbridge.dialplan.model import NuisancePolicy, Overflow
from callbridge.engine import events as ev
from callbridge.engine.core import TransferRequest
from callbridge.engine.dtmf import DigitBuffers
from callbridge.engine.effects import StartTimer
from callbridge.engine.nuisance import NuisanceWatch
from callbridge.engine.overflow import OverflowWatch, QueueStats
from tests.engine.pbx import CALLER, Chan, Pbx

CODES = frozenset({"*1", "*3", "*45"})


def test_digits_match_codes_wait_on_prefixes_and_drop_noise() -> None:
    b = DigitBuffers()
    assert b.press("ch", "*", CODES).waiting
    assert b.press("ch", "1", CODES).code == "*1"
    assert b.press("ch", "7", CODES).code is None and b.pending("ch") == ""
    assert b.press("ch", "*", CODES).waiting and b.press("ch", "4", CODES).waiting
    assert b.expire("ch") == "*4"
    assert b.press("ch", "5", CODES).code is None  # a lone 5 after the timeout is noise
    assert b.press("ch", "*", CODES).waiting and b.press("ch", "*", CODES).waiting  # ** restarts the code
    assert b.press("ch", "3", CODES).code == "*3"


def test_partial_code_arms_the_interdigit_timer_and_timeout_forgets_it() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "*")
    assert next(e for e in pbx.take() if isinstance(e, StartTimer)).seconds == 2.0
    pbx.engine.on_timer(f"dtmf:{agent.name}", pbx.now)
    pbx.press(agent, "1")
    assert not pbx.sent()


def test_the_caller_pressing_keys_never_triggers_a_transfer() -> None:
    pbx = Pbx()
    caller = pbx.call()
    pbx.answer_by(caller)
    pbx.take()
    pbx.press(caller, "*1")
    assert not pbx.sent() and not pbx.engine.transfers


OVERFLOW = Overflow.model_validate({"id": "of", "queue": "q", "start": {"waiting_calls": 3, "free_agents_at_most": 0},
                                    "recover": {"waiting_calls": 1}, "to_queue": "remote"})


def test_overflow_starts_at_the_threshold_and_recovers_with_hysteresis() -> None:
    w = OverflowWatch()
    busy = QueueStats(3, 10.0, 0, ("c1", "c2", "c3"))
    assert w.evaluate((OVERFLOW,), {"q": QueueStats(3, 10.0, 1)}) == []  # a free agent: no overflow
    [start] = w.evaluate((OVERFLOW,), {"q": busy})
    assert (start.change, start.reason) == ("start", "waiting")
    assert w.withdraw_candidates(OVERFLOW, busy) == ("c2", "c3")
    assert w.evaluate((OVERFLOW,), {"q": QueueStats(2, 5.0, 0)}) == []  # below start, above recover: stays
    [stop] = w.evaluate((OVERFLOW,), {"q": QueueStats(1, 5.0, 0)})
    assert (stop.change, stop.reason) == ("stop", "recovered")
    w.evaluate((OVERFLOW,), {"q": busy})
    [gone] = w.evaluate((), {"q": busy})  # mode switched away from the rule
    assert gone.reason == "rule_inactive"


def test_nuisance_window_slides_counts_across_hotlines_and_honours_exemptions() -> None:
    policy = NuisancePolicy(window=60, threshold=3, exempt=("110110",), hotlines=("12345",))
    w = NuisanceWatch()
    assert w.offered(policy, "139", "110", 0.0) is None  # counted, but 110 is never filtered
    assert w.offered(policy, "139", "12345", 10.0) is None
    verdict = w.offered(policy, "139", "12345", 20.0)
    assert verdict is not None and verdict.count == 3 and verdict.hotlines == ("110", "12345")
    assert w.offered(policy, "139", "12345", 100.0) is None  # the old calls slid out of the window
    assert all(w.offered(policy, "110110", "12345", t) is None for t in range(10))


def test_nuisance_memory_holds_only_recent_numbers() -> None:
    # A city's hotlines hear tens of thousands of distinct numbers a day, most of them once: the watch
    # must forget a number once its window is empty, not keep a window per number forever.
    policy = NuisancePolicy(window=60, threshold=3)
    w = NuisanceWatch()
    for i in range(20_000):  # a new number every 0.1 s for 2,000 s
        assert w.offered(policy, f"1390000{i:05d}", "12345", i * 0.1) is None
    assert w.tracked_numbers() <= 1.25 * 60 * 10 + 1  # at most 1.25 windows' worth of numbers
    # and a number calling again within its window is still counted
    for t in (2000.0, 2001.0):
        assert w.offered(policy, "13800000000", "12345", t) is None
    verdict = w.offered(policy, "13800000000", "12345", 2002.0)
    assert verdict is not None and verdict.count == 3


def test_nuisance_flag_tags_announces_and_notifies_110() -> None:
    pbx = Pbx()
    for seq in range(1, 6):
        caller = pbx.call(num="13511112222", seq=seq)
    flagged = [e for e in pbx.published() if isinstance(e, ev.NuisanceFlagged)]
    assert len(flagged) == 1 and flagged[0].also_hotlines() == ("110",) and flagged[0].count == 5
    [batch] = [b for b in pbx.sent() if b.tag == "nuisance"]
    tag, announce = batch.actions
    assert isinstance(tag, Setvar) and tag.channel == caller.name
    assert isinstance(announce, Redirect) and (announce.context, announce.exten) == ("cb-announce", "12345")


def test_exempt_number_is_never_flagged() -> None:
    pbx = Pbx()
    for seq in range(1, 8):
        pbx.call(num="13800138000", seq=seq)
    assert not [e for e in pbx.published() if isinstance(e, ev.NuisanceFlagged)]


def test_threeway_moves_caller_and_agent_into_a_room_then_calls_the_destination_in() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "*3")
    [start] = pbx.sent()
    redirect = start.actions[-1]
    assert isinstance(redirect, Redirect) and redirect.extra_channel == agent.name
    assert (redirect.context, redirect.exten) == ("cb-conf", "cb-x1")
    pbx.take()
    pbx.result("xfer:x1:start")
    [originate] = [a for b in pbx.sent() for a in b.actions]
    assert isinstance(originate, Originate)
    assert (originate.channel, originate.caller_num, originate.channel_id) == ("PJSIP/120@hotline-120", CALLER,
                                                                                "x1-leg0")
    # the primary line fails: the backup line is called in
    pbx.take()
    pbx.feed("OriginateResponse", {"ActionID": "a", "Response": "Failure", "Channel": "PJSIP/120@hotline-120",
                                   "Context": "cb-conf", "Exten": "cb-x1", "Reason": "5", "Uniqueid": "x1-leg0",
                                   "CallerIDNum": CALLER, "CallerIDName": ""})  # fmt: skip
    [retry] = [a for b in pbx.sent() for a in b.actions]
    assert isinstance(retry, Originate) and retry.channel == "PJSIP/120@hotline-120-backup"
    leg = Chan("PJSIP/hotline-120-backup-0000000a", "x1-leg1", "x1-leg1", CALLER, "cb-conf", "cb-x1", CALLER)
    pbx.take()
    pbx.feed("ConfbridgeJoin", {**leg.headers(), "Conference": "cb-x1", "BridgeUniqueid": "conf",
                                "BridgeType": "base", "BridgeTechnology": "softmix", "BridgeCreator": "ConfBridge",
                                "BridgeName": "cb-x1", "BridgeNumChannels": "3", "Admin": "No",
                                "Muted": "No"})  # fmt: skip
    kick = [a for b in pbx.sent() for a in b.actions]
    assert kick == [ConfbridgeKick(conference="cb-x1", channel=agent.name)]
    assert [e.TYPE for e in pbx.published()] == ["transfer.answered", "transfer.number_verified"]


def test_expert_transfer_sets_priority_and_queue_events_report_it() -> None:
    pbx = Pbx()
    caller = pbx.call()
    pbx.answer_by(caller)
    pbx.take()
    pbx.engine.set_mode("emergency", pbx.now)
    pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="110",
                                                category="emergency", mode="blind"), pbx.now)
    [batch] = [e for e in pbx.engine.drain() if hasattr(e, "actions")]
    values = {a.variable: a.value for a in batch.actions if isinstance(a, Setvar)}
    assert values["__CB_PRIO"] == "10" and batch.actions[-1] == Redirect(channel=caller.name,
                                                                          context="cb-expert-110", exten="s")
    pbx.feed("QueueCallerJoin", {**caller.headers(), "Queue": "q-110-expert", "Position": "1", "Count": "1"})
    [prio] = [e for e in pbx.published() if isinstance(e, ev.QueuePrioritySet)]
    assert (prio.queue, prio.priority, prio.transfer_id) == ("q-110-expert", 10, "x1")
    pbx.take()
    pbx.engine.set_priority(caller.linkedid, 20, pbx.now)
    [raise_] = [a for e in pbx.engine.drain() if hasattr(e, "actions") for a in e.actions]  # type: ignore[attr-defined]
    assert raise_.to_headers()[1:] == [("Queue", "q-110-expert"), ("Caller", caller.name), ("Priority", "20"),
                                       ("Immediate", "yes")]


def test_overflow_in_surge_mode_routes_at_entry_and_withdraws_waiting_callers() -> None:
    pbx = Pbx()
    pbx.engine.set_mode("surge", pbx.now)
    for seq in range(1, 10):
        c = pbx.call(num=f"1370000000{seq}", seq=seq)
        pbx.feed("QueueCallerJoin", {**c.headers(), "Queue": "q-12345", "Position": str(seq), "Count": str(seq)})
    [started] = [e for e in pbx.published() if isinstance(e, ev.QueueOverflowStarted)]
    assert (started.queue, started.reason, started.waiting) == ("q-12345", "waiting", 8)
    [batch] = [b for b in pbx.sent() if b.tag == "overflow"]
    assert batch.actions[0] == Setvar(variable="CB_OVERFLOW_12345", value="of-12345-remote")
    withdrawn = [a.caller for a in batch.actions if isinstance(a, QueueWithdrawCaller)]
    assert withdrawn == [f"PJSIP/carrier-{n:08x}" for n in range(3, 9)]  # the two oldest stay local


def test_no_nuisance_filtering_in_the_emergency_plan() -> None:
    pbx = Pbx()
    pbx.engine.set_mode("emergency", pbx.now)
    for seq in range(1, 8):
        pbx.call(num="13511112222", seq=seq)
    assert not [e for e in pbx.published() if isinstance(e, ev.NuisanceFlagged)]
