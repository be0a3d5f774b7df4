"""Live PBX: restarts. ``callbridge run`` restarted while a transfer rings (issue 15, point 3), then
``core restart now`` in the middle of a call (runs last: it restarts the session's Asterisk).

Asterisk hangs every channel up (SoftHangupRequest Cause 4), says ``Shutdown Restart: True``, closes AMI
and boots again with the same rendered configuration; callbridge ends the call, reconnects and resyncs.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest
from conftest import CALLER, Lab, never_bye
from livepbx import wait_for

pytestmark = pytest.mark.live


def _rows(lab: Lab, sql: str, *args: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(lab.root / "records.sqlite3") as db:
        return list(db.execute(sql, args))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_callbridge_restarted_while_a_transfer_rings_keeps_the_transfer(clean: Lab, sig: signal.Signals) -> None:
    """120 → 119 (blind): hotline-119 rings for ever; callbridge stops while it rings and starts again.
    The new run knows the call and the transfer: no second call.offered, the backup line and the answer
    are reported for the same transfer id, and the records hold one row per call and hotline."""
    lab = clean
    caller, call_id = lab.call("120")
    reply = lab.command("transfer", {"call_id": call_id, "agent": lab.answered_by, "to_hotline": "119",
                                     "mode": "blind", "category": "fire"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    assert lab.events.wait("transfer.ringing", transfer_id=tid)["data"]["line"] == "PJSIP/119@hotline-119"
    lab.stop_callbridge(sig)
    lab.start_callbridge()
    backup = lab.events.wait("transfer.backup_line", transfer_id=tid, timeout=60)["data"]
    assert backup["failed_line"] == "PJSIP/119@hotline-119"
    answered = lab.events.wait("transfer.answered", transfer_id=tid)["data"]
    assert (answered["line"], answered["from_hotline"], answered["caller_num"]) == (
        "PJSIP/119@hotline-119-backup", "120", CALLER)
    assert len(lab.events.of("call.offered", call_id=call_id)) == 1
    unattributed = [e["type"] for e in lab.events.of_call(call_id) if e["data"].get("hotline") in (None, "", "_")
                    and not e["type"].endswith(".command.received")]  # a command names no hotline of its own
    assert not unattributed, unattributed
    assert never_bye(caller)
    lab.hang_up_everything()
    lab.events.wait("call.ended", call_id=call_id)
    rows = wait_for(lambda: [r for r in _rows(lab, "SELECT hotline, outcome FROM calls WHERE call_id = ?", call_id)
                             if r[1]], 30, label="records written")  # fmt: skip
    hotlines = [r[0] for r in rows]
    assert len(hotlines) == len(set(hotlines)) and set(hotlines) <= {"120", "119"} and "120" in hotlines, rows
    assert len(_rows(lab, "SELECT 1 FROM transfers WHERE transfer_id = ?", tid)) == 1


def test_callbridge_restarted_after_the_transfer_was_answered_keeps_call_and_transfer(clean: Lab) -> None:
    """122 → 110 (blind): hotline-110 answers; callbridge stops (SIGTERM) and starts again while the caller
    talks to 110. The new run knows the call's hotline, agent and transfer from the PBX; call.offered is not
    published again; at the end call.ended says answered, the transfer is completed once, one record row."""
    lab = clean
    caller, call_id = lab.call("122")
    agent = lab.answered_by
    reply = lab.command("transfer", {"call_id": call_id, "agent": agent, "to_hotline": "110", "category": "police"})
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    assert lab.events.wait("transfer.answered", transfer_id=tid)["data"]["line"] == "PJSIP/110@hotline-110"
    lab.wait_cli("core show channels concise", "PJSIP/hotline-110-")
    lab.stop_callbridge(signal.SIGTERM)
    lab.start_callbridge()
    status = wait_for(lambda: (r := lab.command("status", {"call_id": call_id, "role": "supervisor"}))["ok"]
                      and r["result"].get("call") and r["result"]["transfers"] and r["result"], 30,
                      label="status after the restart")  # fmt: skip
    call = status["call"]
    assert (call["hotline"], call["agent"], call["answered"]) == ("122", agent, True), call
    assert [t["transfer_id"] for t in status["transfers"]] == [tid], status["transfers"]
    assert "PJSIP/hotline-110-" in lab.cli("core show channels concise")  # the restart hung nothing up
    assert never_bye(caller)
    lab.hang_up_everything()
    ended = lab.events.wait("call.ended", call_id=call_id)["data"]
    assert ended["answered"] is True, ended
    wait_for(lambda: lab.events.of("transfer.completed", transfer_id=tid), 30, label="transfer.completed")
    assert len(lab.events.of("call.offered", call_id=call_id)) == 1
    assert len(lab.events.of("transfer.completed", transfer_id=tid)) == 1
    rows = wait_for(lambda: [r for r in _rows(lab, "SELECT hotline, outcome FROM calls WHERE call_id = ?", call_id)
                             if r[1]], 30, label="records written")  # fmt: skip
    hotlines = [r[0] for r in rows]
    assert len(hotlines) == len(set(hotlines)) and "122" in hotlines, rows
    assert len(_rows(lab, "SELECT 1 FROM transfers WHERE transfer_id = ?", tid)) == 1


def test_core_restart_now_mid_call_ends_the_call_and_callbridge_reconnects(lab: Lab) -> None:
    lab.only_agent("q-12345", "agent1002")
    _caller, call_id = lab.call("12345", "13700000077")
    log = lab.root / "callbridge.log"
    connected_before = log.read_bytes().count(b'"ami.connected"')
    lab.cli("core restart now")
    ended = lab.events.wait("call.ended", call_id=call_id, timeout=30)
    assert ended["data"]["call_id"] == call_id
    wait_for(lambda: "fully booted" in lab.cli("core waitfullybooted").lower(), 60, label="Asterisk back")
    wait_for(lambda: log.read_bytes().count(b'"ami.connected"') > connected_before, 30, label="callbridge reconnects")
    # the rendered configuration is loaded again and serves calls
    assert "cb-inbound" in lab.cli("dialplan show cb-inbound")
    _caller2, call2 = lab.call("12345", "13700000078")
    assert call2 != call_id
    lab.hang_up_everything()
