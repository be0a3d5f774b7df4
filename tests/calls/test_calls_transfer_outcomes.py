"""Every transfer ends in exactly one outcome (``call.transfer_ended``): completed, or failed with a reason,
the failed leg's Q.850 cause and SIP status, and the caller's fate (issue 16, point 1)."""

from __future__ import annotations

import pytest

from callbridge.calls import events as ce
from callbridge.calls.transfers import failure_reason
from callbridge.domain import DomainEvent
from tests.calls.traces import full_name, of_type, replay_case, replay_trace


def _outcome(derived: list[DomainEvent]) -> ce.CallTransferEnded:
    (outcome,) = [e for e in derived if isinstance(e, ce.CallTransferEnded)]
    return outcome


@pytest.mark.parametrize(
    ("case", "outcome", "reason", "cause", "sip", "fate", "answered_by"),
    [
        ("blind_busy_then_backup_answers", "failed", "busy", 17, "486", "rescued", "agent1003"),
        ("blind_to_unavailable_trunk_no_channel", "failed", "unreachable", 3, "", "lost", ""),
        ("blind_to_silent_trunk_timer_b", "failed", "unreachable", 18, "408", "lost", ""),
        ("blind_to_unavailable_contact_480", "failed", "unreachable", 20, "480", "lost", ""),
        ("blind_congestion", "failed", "congestion", 34, "503", "lost", ""),
        ("blind_rejected_603", "failed", "rejected", 21, "603", "lost", ""),
        ("blind_caller_gives_up_while_ringing", "failed", "caller_hangup", 0, "", "lost", ""),
        ("blind_refused", "failed", "refused", None, "", "stayed", ""),
        ("blind_target_picked_up", "completed", "", None, "", "answered", "agent1003"),
    ],
)  # fmt: skip
def test_a_phone_blind_transfer_ends_in_one_outcome(case: str, outcome: str, reason: str, cause: int | None,
                                                    sip: str, fate: str, answered_by: str) -> None:  # fmt: skip
    derived, _ = replay_case(case)
    ended = _outcome(derived)
    assert (ended.outcome, ended.reason, ended.cause, ended.sip_status, ended.caller_fate, ended.answered_by) == (
        outcome, reason, cause, sip, fate, answered_by)  # fmt: skip
    (xfer,) = of_type(derived, "call.transferred")
    assert derived.index(xfer) < derived.index(ended) < derived.index(of_type(derived, "call.ended")[0])
    assert ended.transferer.startswith("PJSIP/agent1001-") and ended.caller_num == "13800138000"


def test_a_leg_that_never_rang_is_not_reported_ringing() -> None:
    for case in ("blind_to_silent_trunk_timer_b", "blind_congestion", "blind_to_unavailable_contact_480"):
        derived, _ = replay_case(case)
        assert [e.data()["agent"] for e in of_type(derived, "call.ringing")] == ["agent1001"], case
    derived, _ = replay_trace(full_name("13"))
    assert [e.data()["agent"] for e in of_type(derived, "call.ringing")] == ["agent1001"], "486 at once: no ring"


def test_recorded_busy_target_loses_the_caller() -> None:
    ended = _outcome(replay_trace(full_name("13"))[0])
    assert (ended.outcome, ended.reason, ended.cause, ended.sip_status, ended.caller_fate) == (
        "failed", "busy", 17, "486", "lost")  # fmt: skip
    assert ended.target == "12345@internal" and ended.kind == "blind"


def test_recorded_unanswered_target_loses_the_caller_after_ringing() -> None:
    ended = _outcome(replay_trace(full_name("15"))[0])
    assert (ended.outcome, ended.reason, ended.caller_fate) == ("failed", "no_answer", "lost")


def test_recorded_completed_transfers_name_who_answered() -> None:
    blind = _outcome(replay_trace(full_name("04"))[0])
    assert (blind.outcome, blind.answered_by, blind.caller_fate) == ("completed", "hotline-12345", "answered")
    assert blind.answered_channel.startswith("PJSIP/hotline-12345-") and blind.wait_s > 0
    attended = _outcome(replay_trace(full_name("06"))[0])
    assert (attended.outcome, attended.kind, attended.answered_by) == ("completed", "attended", "agent1002")


@pytest.mark.parametrize(
    ("status", "cause", "sip", "rang", "reason"),
    [
        ("BUSY", 17, "486", False, "busy"),
        ("", None, "600", False, "busy"),
        ("NOANSWER", 19, "", True, "no_answer"),
        ("NOANSWER", 18, "408", False, "unreachable"),
        ("", 19, "480", False, "unreachable"),
        ("CHANUNAVAIL", None, "", False, "unreachable"),
        ("", 3, "", False, "unreachable"),
        ("CONGESTION", 34, "503", False, "congestion"),
        ("BUSY", 21, "603", True, "rejected"),
        ("CANCEL", None, "", True, "caller_hangup"),
    ],
)  # fmt: skip
def test_failure_reason_from_dial_status_cause_and_sip_status(status: str, cause: int | None, sip: str, rang: bool,
                                                              reason: str) -> None:  # fmt: skip
    assert failure_reason(status, cause, sip, rang) == reason
