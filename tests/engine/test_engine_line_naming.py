"""Every event of a transfer names a line the same way, and the backup line's number is checked too
(issue 15, point 5: ``line`` alternated between ``110@hotline-110`` and ``PJSIP/110@hotline-110-backup``;
the number check ran on the primary line only)."""

from __future__ import annotations

from callbridge.engine import events as ev
from tests.engine.pbx import CALLER, Chan, Pbx


def test_lines_are_named_as_in_the_dialplan_and_each_line_is_number_checked() -> None:
    pbx = Pbx()
    caller = pbx.call()
    agent = pbx.answer_by(caller)
    pbx.press(agent, "*1")  # r-12345-110-police: blind, failure [backup_line, back_to_agent]; t-110 verify: true
    pbx.result("xfer:x1:start")
    pbx.user_event(caller, "CallbridgeTarget", XferId="x1", Hotline="110")
    primary = Chan("PJSIP/hotline-110-00000009", "t1", caller.linkedid, "110", "from-trunk", "110", CALLER)
    pbx.dial(caller, primary, "110@hotline-110")  # Asterisk's DialString has no technology
    pbx.dial(caller, primary, "110@hotline-110", "BUSY")
    pbx.hangup(primary, 17)
    pbx.user_event(caller, "CallbridgeLine", XferId="x1", Line="1", Status="BUSY")
    backup = Chan("PJSIP/hotline-110-backup-0000000a", "t2", caller.linkedid, "110", "from-trunk", "110", "02000")
    pbx.dial(caller, backup, "110@hotline-110-backup")
    lines = [(e.TYPE, e.line) for e in pbx.published()
             if e.TYPE.startswith("transfer.") and e.TYPE != "transfer.requested"]  # fmt: skip
    assert lines == [
        ("transfer.ringing", "PJSIP/110@hotline-110"),
        ("transfer.number_verified", "PJSIP/110@hotline-110"),
        ("transfer.backup_line", "PJSIP/110@hotline-110-backup"),
        ("transfer.ringing", "PJSIP/110@hotline-110-backup"),
        ("transfer.number_mismatch", "PJSIP/110@hotline-110-backup"),  # the backup line lost the number
    ]
    [mismatch] = [e for e in pbx.published() if isinstance(e, ev.TransferNumberMismatch)]
    assert mismatch.presented_num == "02000" and mismatch.caller_num == CALLER
