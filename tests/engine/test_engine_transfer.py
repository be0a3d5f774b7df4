"""Engine decisions for transfers, driven by AMI events through the real tracker (no I/O)."""

from __future__ import annotations

import pytest

import callbridge.engine.transfers as registry
from callbridge.ami.actions import Atxfer, Hangup, Redirect, Setvar
from callbridge.engine import events as ev
from callbridge.engine.core import TransferRequest
from callbridge.engine.transfer import IllegalTransition, TState, move
from callbridge.errors import CommandError
from tests.engine.pbx import CALLER, Chan, Pbx


def started(pbx: Pbx) -> tuple[Chan, Chan]:
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.take()
    return caller, agent


def test_one_key_code_sets_handover_vars_then_redirects_the_caller() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.press(agent, "*1")
    [batch] = pbx.sent()
    assert batch.tag == "xfer:x1:start"
    *setvars, redirect = batch.actions
    assert isinstance(redirect, Redirect)
    assert (redirect.channel, redirect.context, redirect.exten) == (caller.name, "cb-to-110", "s")
    values = {s.variable: s.value for s in setvars if isinstance(s, Setvar)}
    assert all(s.channel == caller.name for s in setvars if isinstance(s, Setvar))
    assert values["__CB_CALLER_NUM"] == CALLER and values["__CB_XFER_ID"] == "x1"
    assert values["__CB_BACK"] == "PJSIP/agent1001" and values["__CB_BACKUP"] == "1"
    [requested] = [e for e in pbx.published() if isinstance(e, ev.TransferRequested)]
    assert requested.also_hotlines() == ("110",) and requested.category == "police" and requested.source == "dtmf"


def test_progress_verification_and_two_sided_close() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.press(agent, "*1")
    pbx.result("xfer:x1:start")
    pbx.user_event(caller, "CallbridgeTarget", XferId="x1", Hotline="110")
    trunk = Chan("PJSIP/hotline-110-00000009", "t1", caller.linkedid, "110", "from-trunk", "110", CALLER)
    pbx.dial(caller, trunk, "110@hotline-110")
    pbx.dial(caller, trunk, "110@hotline-110", "ANSWER")
    pbx.hangup(trunk)
    pbx.hangup(caller)
    types = [e.TYPE for e in pbx.published() if e.TYPE.startswith("transfer.")]
    assert types == ["transfer.requested", "transfer.ringing", "transfer.number_verified", "transfer.answered",
                     "transfer.completed"]
    assert pbx.engine.transfers["x1"].state is TState.COMPLETED


@pytest.mark.parametrize(("inbound", "presented"), [("+86" + CALLER, CALLER), (CALLER, "0086" + CALLER),
                                                   ("0" + CALLER, "+86" + CALLER)])  # fmt: skip
def test_number_verification_compares_numbers_in_their_normal_form(inbound: str, presented: str) -> None:
    pbx = Pbx()
    caller = pbx.call(num=inbound)  # the carrier and the outbound trunk write the same number differently
    agent = pbx.answer_by(caller)
    pbx.take()
    pbx.press(agent, "*1")
    pbx.result("xfer:x1:start")
    trunk = Chan("PJSIP/hotline-110-00000009", "t1", caller.linkedid, "110", "from-trunk", "110", presented)
    pbx.dial(caller, trunk, "110@hotline-110")
    pbx.dial(caller, trunk, "110@hotline-110", "ANSWER")
    assert [e for e in pbx.published() if isinstance(e, ev.TransferNumberVerified)]
    assert not [e for e in pbx.published() if isinstance(e, ev.TransferNumberMismatch)]


def test_outbound_leg_with_another_number_raises_the_mismatch_alarm() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.press(agent, "*1")
    pbx.result("xfer:x1:start")
    trunk = Chan("PJSIP/hotline-110-00000009", "t1", caller.linkedid, "110", "from-trunk", "110", "1001")
    pbx.dial(caller, trunk, "110@hotline-110")
    [alarm] = [e for e in pbx.published() if isinstance(e, ev.TransferNumberMismatch)]
    assert alarm.presented_num == "1001" and alarm.caller_num == CALLER


def test_failed_line_backup_then_back_to_the_agent() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.press(agent, "*1")
    pbx.result("xfer:x1:start")
    pbx.user_event(caller, "CallbridgeLine", XferId="x1", Line="1", Status="CHANUNAVAIL")
    pbx.user_event(caller, "CallbridgeLine", XferId="x1", Line="2", Status="NOANSWER")
    pbx.user_event(caller, "CallbridgeBack", XferId="x1", Agent="PJSIP/agent1001")
    [backup] = [e for e in pbx.published() if isinstance(e, ev.TransferBackupLine)]
    assert (backup.reason, backup.failed_line, backup.line) == ("unreachable", "PJSIP/110@hotline-110",
                                                                "PJSIP/110@hotline-110-backup")
    [returned] = [e for e in pbx.published() if isinstance(e, ev.TransferReturned)]
    assert returned.reason == "noanswer"


def test_second_agent_and_repeats_get_clear_answers() -> None:
    pbx = Pbx()
    caller, _agent = started(pbx)
    req = TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="110", category="police",
                          idempotency_key="k")
    first = pbx.engine.request_transfer(req, pbx.now)
    assert pbx.engine.request_transfer(req, pbx.now)["duplicate"] is True
    with pytest.raises(CommandError) as busy:
        pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="110"),
                                    pbx.now)
    assert busy.value.code == "call_busy" and first["transfer_id"] in str(busy.value)
    with pytest.raises(CommandError) as stranger:
        pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1002", to_hotline="110"),
                                    pbx.now)
    assert stranger.value.code == "not_a_party"
    assert len([s for s in pbx.engine.drain() if getattr(s, "tag", "").endswith(":start")]) == 1


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (TransferRequest(call_id="c1", agent="agent1001", to_hotline="110", category="water"), "category_not_allowed"),
        (TransferRequest(call_id="c1", agent="agent1001", to_hotline="999"), "no_rule"),
        (TransferRequest(call_id="nope", agent="agent1001", to_hotline="110"), "unknown_call"),
        (TransferRequest(call_id="c1", agent="agent1001", code="#4"), "no_rule"),  # emergency mode only
        (TransferRequest(call_id="c1", agent="agent1001", to_hotline="110", summary="a\r\nAction: Hangup"),
         "unsafe_value"),
    ],
)
def test_refusals_never_reach_ami(request_: TransferRequest, code: str) -> None:
    pbx = Pbx()
    started(pbx)
    with pytest.raises(CommandError) as refused:
        pbx.engine.request_transfer(request_, pbx.now)
    assert refused.value.code == code
    effects = pbx.engine.drain()
    assert not [e for e in effects if hasattr(e, "actions")]
    assert [e.event.reason for e in effects if isinstance(getattr(e, "event", None), ev.TransferRefused)] == [code]


def test_unknown_outcome_is_reconciled_never_resent() -> None:
    pbx = Pbx()
    _caller, agent = started(pbx)
    pbx.press(agent, "*1")
    pbx.take()
    pbx.result("xfer:x1:start", "unknown", "connection lost")
    assert pbx.engine.transfers["x1"].state is TState.UNKNOWN
    pbx.engine.on_resynced(pbx.now)  # the tracker still has caller and agent bridged: it did not happen
    effects = pbx.engine.drain()
    assert not [e for e in effects if hasattr(e, "actions")]
    assert pbx.engine.transfers["x1"].state is TState.FAILED
    assert pbx.engine.transfers["x1"].history[-1][3] == "ami_outcome_unknown"


def test_caller_hanging_up_half_way_ends_the_transfer() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.press(agent, "*1")
    pbx.result("xfer:x1:start")
    pbx.hangup(caller)
    [failed] = [e for e in pbx.published() if isinstance(e, ev.TransferFailed)]
    assert failed.reason == "caller_hangup"
    assert not pbx.engine.active()


def test_attended_transfer_consults_from_the_agents_channel() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="119",
                                                category="fire"), pbx.now)
    [batch] = [e for e in pbx.engine.drain() if hasattr(e, "actions")]
    atxfer = batch.actions[-1]
    assert isinstance(atxfer, Atxfer) and (atxfer.channel, atxfer.context) == (agent.name, "cb-expert-119")
    pbx.result("xfer:x1:start")
    assert pbx.engine.transfers["x1"].state is TState.CONSULTING
    pbx.engine.cancel(caller.linkedid, "agent1001", "x1", pbx.now)
    pbx.result("xfer:x1:cancel")
    assert pbx.engine.transfers["x1"].state is TState.RETURNED


def test_rules_are_kept_across_a_reload_and_modes_switch_rules() -> None:
    pbx = Pbx()
    _caller, agent = started(pbx)
    pbx.press(agent, "*1")
    rule = pbx.engine.transfers["x1"].rule
    pbx.engine.swap_dialplan(Pbx().plan, pbx.now)
    assert pbx.engine.transfers["x1"].rule is rule
    pbx.engine.set_mode("emergency", pbx.now)
    assert any(isinstance(e.event, ev.ModeSwitched) for e in pbx.engine.drain() if hasattr(e, "event"))
    with pytest.raises(CommandError):
        pbx.engine.set_mode("holiday", pbx.now)


def test_state_machine_refuses_illegal_moves() -> None:
    pbx = Pbx()
    _caller, agent = started(pbx)
    pbx.press(agent, "*1")
    t = pbx.engine.transfers["x1"]
    with pytest.raises(IllegalTransition):
        move(t, TState.COMPLETED, pbx.now)
    move(t, TState.FAILED, pbx.now, "test")
    with pytest.raises(IllegalTransition):
        move(t, TState.RINGING, pbx.now)


def test_finished_transfers_are_forgotten_beyond_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "KEEP_FINISHED", 2)
    pbx = Pbx()
    for seq in range(1, 4):
        caller = pbx.call(num=f"1390000000{seq}", seq=seq)
        pbx.answer_by(caller, seq=seq)
        pbx.engine.request_transfer(TransferRequest(call_id=caller.linkedid, agent="agent1001", to_hotline="110",
                                                    idempotency_key=f"k{seq}"), pbx.now)
        pbx.hangup(caller)  # finished: caller_hangup
    assert list(pbx.engine.transfers) == ["x2", "x3"] and not pbx.engine.active()
    assert pbx.engine.transfers.by_key("k1") is None and pbx.engine.transfers.by_key("k3") is pbx.engine.transfers["x3"]


def test_the_engine_never_hangs_up_a_caller() -> None:
    pbx = Pbx()
    caller, agent = started(pbx)
    pbx.engine.send([Hangup(channel=caller.name)], "test")
    pbx.engine.send([Hangup(channel=agent.name)], "test")  # the transferer's leg may be hung up (atxfer)
    sent = [a for e in pbx.engine.drain() if hasattr(e, "actions") for a in e.actions]  # type: ignore[attr-defined]
    assert sent == [Hangup(channel=agent.name)]
