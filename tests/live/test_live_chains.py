"""Live PBX: three-way hand-overs, failure chains (busy / qualified unavailable → backup → back to the
agent), the emergency priority jump, the least-privilege AMI user, the daemon's huge-page arenas, a nuisance caller.

Trunk behaviours are fixed per endpoint by the live site file (conftest.TRUNK_BEHAVIOUR): hotline-122
answers 486 and its backup answers; utility-water (one line) is busy; utility-power is qualified and dead,
its backup answers.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import CALLER, Lab, header, never_bye
from livepbx import wait_for
from simtwin import hold_to_simulator

from callbridge.dialplan.render_conf import AMI_READ, AMI_WRITE
from callbridge.hugepages import huge_arena_stats, thp_mode

pytestmark = pytest.mark.live



def _from_12345(lab: Lab, caller: str = CALLER) -> tuple[object, str]:
    lab.only_agent("q-12345", "agent1002")
    return lab.call("12345", caller)


def _number_at(lab: Lab, trunk: str, number: str, before: int, caller: str = CALLER) -> None:
    invite = wait_for(lambda: lab.sip_invites(trunk, number)[before:], 20, label=f"INVITE {number} at {trunk}")[0]
    assert caller in header(invite, "From") and caller in header(invite, "P-Asserted-Identity"), invite


def test_threeway_hand_over_to_120_with_the_agent_leaving(clean: Lab) -> None:
    lab = clean
    before = len(lab.sip_invites("ok", "120"))
    caller, call_id = _from_12345(lab)
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "120",
                                     "category": "medical"})  # fmt: skip  (the rule's mode: threeway)
    assert reply["ok"] and reply["result"]["mode"] == "threeway", reply
    tid = reply["result"]["transfer_id"]
    room = lab.events.wait("threeway.started", transfer_id=tid)["data"]["room"]
    lab.events.wait("transfer.answered", transfer_id=tid)
    lab.events.wait("threeway.agent_left", transfer_id=tid)
    _number_at(lab, "ok", "120", before)
    members = lab.wait_cli(f"confbridge list {room}", "hotline-120")
    assert "carrier" in members and "agent1002" not in members, members
    assert room in lab.cli("confbridge list")
    assert never_bye(caller)  # type: ignore[arg-type]
    hold_to_simulator(lab.events.of_call(call_id), call_id, "threeway_120_agent_leaves", lab.root, CALLER)


def test_threeway_from_119_with_the_agent_staying(clean: Lab) -> None:
    lab = clean
    caller, call_id = lab.call("119")
    agent = lab.answered_by
    assert agent.startswith("agent22"), agent  # Local/22xx@sim rings PJSIP/agent22xx
    reply = lab.command("transfer", {"call_id": call_id, "agent": agent, "to_hotline": "120",
                                     "category": "medical"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    room = lab.events.wait("threeway.started", transfer_id=tid)["data"]["room"]
    lab.events.wait("transfer.answered", transfer_id=tid)
    members = lab.wait_cli(f"confbridge list {room}", "hotline-120")
    assert "carrier" in members and agent in members, members  # r-119-120-injured: agent_leaves false
    assert not lab.events.of("threeway.agent_left", transfer_id=tid)
    assert never_bye(caller)  # type: ignore[arg-type]


def test_primary_busy_then_the_backup_line_answers(clean: Lab) -> None:
    lab = clean
    busy_before, ok_before = len(lab.sip_invites("busy", "122")), len(lab.sip_invites("ok", "122"))
    caller, call_id = _from_12345(lab)
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "122",
                                     "category": "traffic"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    backup = lab.events.wait("transfer.backup_line", transfer_id=tid)["data"]
    assert (backup["reason"], backup["failed_line"]) == ("busy", "PJSIP/122@hotline-122")
    answered = lab.events.wait("transfer.answered", transfer_id=tid)["data"]
    assert answered["line"] == "PJSIP/122@hotline-122-backup"
    assert len(lab.sip_invites("busy", "122")) > busy_before
    _number_at(lab, "ok", "122", ok_before)
    assert "PJSIP/hotline-122-backup-" in lab.cli("core show channels concise")
    assert never_bye(caller)  # type: ignore[arg-type]
    hold_to_simulator(lab.events.of_call(call_id), call_id, "busy_122_backup", lab.root, CALLER)


def test_busy_single_line_goes_back_to_the_sending_agent(clean: Lab) -> None:
    lab = clean
    caller, call_id = _from_12345(lab)
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "96116",
                                     "category": "water"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    returned = lab.events.wait("transfer.returned", transfer_id=tid)["data"]
    assert returned["reason"] == "busy"
    assert not lab.events.of("transfer.backup_line", transfer_id=tid)
    lab.wait_cli("core show channels concise", "PJSIP/agent1002-")  # cb-back rang the agent again
    assert never_bye(caller)  # type: ignore[arg-type]
    hold_to_simulator(lab.events.of_call(call_id), call_id, "busy_water_back_to_agent", lab.root, CALLER)


def test_qualified_unavailable_primary_fails_at_once_and_the_backup_answers(clean: Lab) -> None:
    lab = clean
    lab.wait_cli("pjsip show contacts", "Unavail", timeout=30)  # utility-power's contact, qualified dead
    caller, call_id = _from_12345(lab)
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "95598",
                                     "category": "power"})  # fmt: skip
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    backup = lab.events.wait("transfer.backup_line", transfer_id=tid, timeout=10)["data"]
    assert backup["reason"] == "unreachable"
    assert lab.events.wait("transfer.answered", transfer_id=tid)["data"]["line"] == "PJSIP/95598@utility-power-backup"
    assert never_bye(caller)  # type: ignore[arg-type]
    hold_to_simulator(lab.events.of_call(call_id), call_id, "qualified_power_backup", lab.root, CALLER)


def test_emergency_referral_jumps_the_110_expert_queue(clean: Lab) -> None:
    """The referral is an attended transfer whose consultation leg waits in the paused queue until the end;
    it is cancelled before anything is hung up: Asterisk 22.10 crashes (SIGSEGV in bridge_basic.c's
    blond_nonfinal_enter) when one hang-up request reaches the consulting agent and that leg at once."""
    lab = clean
    lab.pause_all("q-110-expert")  # nobody answers: callers wait
    lab.pause_all("q-110")
    waiting = []
    call_id = tid = ""
    try:
        for n in range(2):
            sipp = lab.pbx.call_in(f"waiting{n}", f"1360000000{n}", "110")
            waiting.append(sipp)
            chan = wait_for(lambda n=n: re.findall(r"^(PJSIP/carrier-[0-9a-f]+)!.*1360000000" + str(n),
                                                   lab.cli("core show channels concise"), re.M), 20)[0]
            lab.cli(f"channel redirect {chan} cb-expert-110,s,1")
        lab.wait_cli("queue show q-110-expert", "2 calls")
        assert lab.command("set_mode", {"mode": "emergency", "reason": "live", "role": "supervisor"})["ok"]
        _caller, call_id = _from_12345(lab, "13700000099")
        reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "110",
                                         "category": "emergency"})  # fmt: skip
        assert reply["ok"], str(reply)
        tid = reply["result"]["transfer_id"]
        prio = lab.events.wait("queue.priority_set", call_id=call_id)["data"]
        assert (prio["queue"], prio["priority"]) == ("q-110-expert", 10)
        queue = lab.wait_cli("queue show q-110-expert", "3 calls")
        first = re.search(r"^\s+1\. (\S+)", queue, re.M)
        assert first is not None and first.group(1) in lab.cli("core show channels concise")
        assert "13700000099" in lab.cli(f"core show channel {first.group(1)}")
    finally:
        lab.command("set_mode", {"mode": "normal", "reason": "live", "role": "supervisor"})
        # the agent is still consulting: back to the caller first (see the docstring)
        if tid and lab.command("cancel", {"call_id": call_id, "agent": "agent1002", "transfer_id": tid})["ok"]:
            lab.events.wait("transfer.returned", transfer_id=tid)
        lab.hang_up_everything()  # while the seats are paused, so that none rings for a waiting caller
        lab.pause_all("q-110-expert", paused=False)
        lab.pause_all("q-110", paused=False)


def test_the_rendered_ami_user_has_least_privilege(lab: Lab) -> None:
    user = lab.cli("manager show user callbridge")
    read = re.search(r"read perm:\s*(\S+)", user)
    write = re.search(r"write perm:\s*(\S+)", user)
    assert read is not None and write is not None, user
    assert set(read.group(1).split(",")) == set(AMI_READ.split(","))
    assert set(write.group(1).split(",")) == set(AMI_WRITE.split(","))
    assert "127.0.0.1" in user
    log = (lab.root / "callbridge.log").read_text("utf-8", "replace")
    assert '"ami.connected"' in log and "Permission denied" not in log


def test_the_daemon_put_its_arenas_on_huge_pages(lab: Lab) -> None:
    """callbridge run installs the huge-page arena allocator first thing (issue 19.3) and says so."""
    lines = [json.loads(line) for line in (lab.root / "callbridge.log").read_text("utf-8", "replace").splitlines()
             if '"callbridge.loop"' in line]  # fmt: skip
    assert lines, "no callbridge.loop line in callbridge.log"
    expected = "on" if huge_arena_stats() and thp_mode() != "never" else "off"
    assert str(lines[0].get("huge_arenas", "")).startswith(expected), lines[0]


def test_a_nuisance_caller_is_flagged_on_the_fifth_call(clean: Lab) -> None:
    lab = clean
    number = "13911112222"
    lab.only_agent("q-12345", "agent1002")
    for n in range(5):
        _caller, call_id = lab.call("12345", number)
        if n < 4:
            lab.hang_up_everything()
    flagged = lab.events.wait("nuisance.flagged", call_id=call_id)["data"]
    assert flagged["count"] == 5
