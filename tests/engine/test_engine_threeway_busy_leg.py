"""A busy three-way leg is reported busy, from the most specific evidence (issue 15, point 4).

Asterisk 22 answers a busy Originate with ``OriginateResponse Reason: 0`` (no reason) *before* the leg's
``DialEnd DialStatus: BUSY`` and ``Hangup Cause: 17``; a leg that never existed (unknown endpoint,
qualified unavailable) gets Reason 0 and no channel at all, and is the only case of "unreachable".
"""

from __future__ import annotations

from callbridge.engine import events as ev
from tests.engine.pbx import CALLER, Chan, Pbx


def _threeway() -> Pbx:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.press(agent, "*3")  # r-12345-120-threeway: failure [backup_line, back_to_agent]
    pbx.result("xfer:x1:start")
    pbx.take()
    return pbx


def _failure(pbx: Pbx, reason: str = "0") -> None:
    pbx.feed("OriginateResponse", {"Response": "Failure", "Channel": "PJSIP/120@hotline-120", "Context": "cb-conf",
                                   "Exten": "cb-x1", "Reason": reason, "Uniqueid": "x1-leg0", "CallerIDNum": CALLER,
                                   "CallerIDName": ""})  # fmt: skip


def _backup_reasons(pbx: Pbx) -> list[str]:
    return [e.reason for e in pbx.published() if isinstance(e, ev.TransferBackupLine)]


def test_busy_leg_reported_busy_although_originate_response_comes_first_without_reason() -> None:
    pbx = _threeway()
    leg = Chan("PJSIP/hotline-120-0000000a", "x1-leg0", "x1-leg0", CALLER, "cb-conf", "cb-x1")
    pbx.feed("Newchannel", leg.headers(state="Down"))
    _failure(pbx, "0")  # Asterisk 22: before the BUSY evidence
    assert _backup_reasons(pbx) == []  # not decided yet: the leg's own hang-up is the better evidence
    pbx.feed("DialEnd", {**leg.headers("Dest", state="Down"), "DialStatus": "BUSY"})
    pbx.feed("Hangup", {**leg.headers(state="Down"), "Cause": "17", "Cause-txt": "User busy"})
    assert _backup_reasons(pbx) == ["busy"]


def test_busy_leg_reported_busy_when_the_hangup_comes_first() -> None:
    pbx = _threeway()
    leg = Chan("PJSIP/hotline-120-0000000a", "x1-leg0", "x1-leg0", CALLER, "cb-conf", "cb-x1")
    pbx.feed("Newchannel", leg.headers(state="Down"))
    pbx.feed("Hangup", {**leg.headers(state="Down"), "Cause": "17", "Cause-txt": "User busy"})
    _failure(pbx, "0")
    assert _backup_reasons(pbx) == ["busy"]


def test_a_leg_that_never_existed_is_unreachable_at_once() -> None:
    pbx = _threeway()
    _failure(pbx, "0")
    assert _backup_reasons(pbx) == ["unreachable"]


def test_a_specific_originate_reason_is_used_as_is() -> None:
    pbx = _threeway()
    _failure(pbx, "5")
    assert _backup_reasons(pbx) == ["busy"]
