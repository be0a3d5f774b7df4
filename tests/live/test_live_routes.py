"""Live PBX: the routes issue 15 lists beyond 12345 → 110, each with its three views (the SIP messages at
the trunk, the MQTT events, Asterisk's CLI): 110 → 12345, 122 → 110, into 119 with its primary never
answering (backup after the answer timeout), and the utility lines: heating unreachable (SIP timer B) and
gas busy in a three-way hand-over, both back to the sending agent.

Trunk behaviours are fixed per endpoint by the live site file (``livelab.TRUNK_BEHAVIOUR``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator

import pytest
from conftest import CALLER, Lab, header, never_bye
from livepbx import Sipp, wait_for
from simtwin import hold_to_simulator

pytestmark = pytest.mark.live


def _number_at(lab: Lab, trunk: str, number: str, before: int, caller: str = CALLER) -> str:
    invite: str = wait_for(lambda: lab.sip_invites(trunk, number)[before:], 30, label=f"INVITE {number} at {trunk}")[0]
    assert caller in header(invite, "From") and caller in header(invite, "P-Asserted-Identity"), invite
    return invite


def test_110_hands_a_non_police_call_to_12345_with_the_number(clean: Lab) -> None:
    """12345 has no outbound trunk in the example city: a transfer into it queues for its own agents
    (q-12345), whose phone shows the citizen's number."""
    lab = clean
    lab.only_agent("q-12345", "agent1003")
    before = len([m for m in lab.agents.received() if m.startswith("INVITE sip:agent1003@")])
    with lab.recording("live_110_to_12345_blind", "110 agent (Local/21xx@sim) blind-transfers to 12345 by MQTT"):
        caller, call_id = lab.call("110")
        agent = lab.answered_by
        assert agent.startswith("agent210"), agent  # q-110: Local/2101@sim, Local/2102@sim
        reply = lab.command("transfer", {"call_id": call_id, "agent": agent, "to_hotline": "12345",
                                         "category": "non_police"})  # fmt: skip
        assert reply["ok"] and reply["result"]["mode"] == "blind", reply
        tid = reply["result"]["transfer_id"]
        answered = lab.events.wait("transfer.answered", transfer_id=tid)["data"]
        assert (answered["from_hotline"], answered["to_hotline"]) == ("110", "12345")
        assert answered["line"] == "PJSIP/agent1003"  # the queue member who answered (as for expert queues)
        invite = wait_for(lambda: [m for m in lab.agents.received() if m.startswith("INVITE sip:agent1003@")][before:],
                          30, label="INVITE at agent1003")[0]  # fmt: skip
        assert CALLER in header(invite, "From"), invite
        channels = lab.cli("core show channels concise")
        assert "PJSIP/agent1003-" in channels and f"PJSIP/{agent}-" not in channels, channels
        assert never_bye(caller)
        lab.hang_up_everything()


def test_122_hands_a_police_matter_to_110(clean: Lab) -> None:
    lab = clean
    before = len(lab.sip_invites("ok", "110"))
    caller, call_id = lab.call("122")
    agent = lab.answered_by
    assert agent.startswith("agent240"), agent
    reply = lab.command("transfer", {"call_id": call_id, "agent": agent, "to_hotline": "110", "category": "police"})
    assert reply["ok"], str(reply)
    tid = reply["result"]["transfer_id"]
    assert lab.events.wait("transfer.answered", transfer_id=tid)["data"]["line"] == "PJSIP/110@hotline-110"
    assert lab.events.wait("transfer.number_verified", transfer_id=tid)["data"]["presented_num"] == CALLER
    _number_at(lab, "ok", "110", before)
    assert never_bye(caller)


def test_primary_never_answers_then_the_backup_line_answers(clean: Lab) -> None:
    """120 → 119 (blind by command): hotline-119 rings for ever; after the rule's answer timeout the backup."""
    lab = clean
    rang_before, ok_before = len(lab.sip_invites("noanswer", "119")), len(lab.sip_invites("ok", "119"))
    with lab.recording("live_no_answer_primary_backup", "120 → 119 blind; hotline-119 rings, never answers; backup"):
        caller, call_id = lab.call("120")
        agent = lab.answered_by
        reply = lab.command("transfer", {"call_id": call_id, "agent": agent, "to_hotline": "119",
                                         "mode": "blind", "category": "fire"})  # fmt: skip
        assert reply["ok"], str(reply)
        tid = reply["result"]["transfer_id"]
        ringing = lab.events.wait("transfer.ringing", transfer_id=tid)["data"]
        assert ringing["line"] == "PJSIP/119@hotline-119"
        assert len(lab.sip_invites("noanswer", "119")) > rang_before
        backup = lab.events.wait("transfer.backup_line", transfer_id=tid, timeout=60)["data"]
        assert (backup["reason"], backup["failed_line"]) == ("noanswer", "PJSIP/119@hotline-119")  # engine words
        answered = lab.events.wait("transfer.answered", transfer_id=tid)["data"]
        assert answered["line"] == "PJSIP/119@hotline-119-backup"
        _number_at(lab, "ok", "119", ok_before)
        assert "PJSIP/hotline-119-backup-" in lab.cli("core show channels concise")
        assert never_bye(caller)
        lab.hang_up_everything()


def test_unreachable_single_utility_line_goes_back_to_the_sending_agent(clean: Lab) -> None:
    """12345 → 96069: nothing answers at utility-heating's address (SIP timer B), one line: back to the agent."""
    lab = clean
    lab.only_agent("q-12345", "agent1002")
    with lab.recording("live_unreachable_utility_back_to_agent", "12345 → 96069 heating: no SIP answer at all"):
        caller, call_id = lab.call("12345")
        reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "96069",
                                         "category": "heating"})  # fmt: skip
        assert reply["ok"], str(reply)
        tid = reply["result"]["transfer_id"]
        returned = lab.events.wait("transfer.returned", transfer_id=tid, timeout=60)["data"]
        assert returned["reason"] == "unreachable", returned
        assert not lab.events.of("transfer.backup_line", transfer_id=tid)
        lab.wait_cli("core show channels concise", "PJSIP/agent1002-")  # cb-back rang the agent again
        assert never_bye(caller)
        lab.hang_up_everything()
    hold_to_simulator(lab.events.of_call(call_id), call_id, "unreachable_heating_back_to_agent", lab.root, CALLER)


def test_busy_gas_line_in_a_threeway_hand_over_goes_back_to_the_agent(clean: Lab) -> None:
    lab = clean
    lab.only_agent("q-12345", "agent1002")
    busy_before = len(lab.sip_invites("busy", "96777"))
    caller, call_id = lab.call("12345")
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "96777",
                                     "category": "gas"})  # fmt: skip
    assert reply["ok"] and reply["result"]["mode"] == "threeway", reply
    tid = reply["result"]["transfer_id"]
    outcome = wait_for(lambda: lab.events.of("transfer.returned", transfer_id=tid)
                       or lab.events.of("transfer.failed", transfer_id=tid), 60, label="the outcome")[0]  # fmt: skip
    assert outcome["data"]["reason"] == "busy", outcome
    assert len(lab.sip_invites("busy", "96777")) > busy_before
    assert "PJSIP/agent1002-" in lab.cli("core show channels concise")
    assert never_bye(caller)


@contextlib.contextmanager
def _frozen(*phones: Sipp) -> Iterator[None]:
    """The phones (SIPp processes this session started) stop answering anything: SIGSTOP, then SIGCONT."""
    for p in phones:
        os.kill(p.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in phones:
            os.kill(p.proc.pid, signal.SIGCONT)


def _drained(*phones: Sipp) -> None:
    """Woken phones answer what was queued for them (late 200 OKs to cancelled INVITEs, which Asterisk
    ACKs and BYEs): wait until their message logs stop growing, so no late answer reaches a later scenario."""
    sizes: list[int] = []

    def quiet() -> bool:
        sizes.append(sum(p.messages.stat().st_size for p in phones if p.messages.exists()))
        return len(sizes) > 4 and len(set(sizes[-5:])) == 1

    # a 200 OK nobody ACKs is retransmitted (retrans 500 ms, doubling up to T2) until SIPp's 32 s timeout:
    # on a loaded machine that outlasts 30 s, so the wait is longer than SIPp's own give-up time
    wait_for(quiet, 60, interval=0.5, label="woken phones quiet")


def test_whole_chain_busy_backup_silent_agent_silent_then_the_origin_queue(clean: Lab) -> None:
    """12345 → 122: hotline-122 answers 486; the backup's SIPp (the "ok" trunk) and the agents' phones are
    frozen, so the backup line and then the sending agent (cb-back) give no answer: the caller goes into the
    origin queue q-12345 (cb-back,12345), never dropped."""
    lab = clean
    lab.only_agent("q-12345", "agent1002")
    busy_before = len(lab.sip_invites("busy", "122"))
    caller, call_id = lab.call("12345")
    with _frozen(lab.trunks["ok"], lab.agents):
        reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "122",
                                         "category": "traffic"})  # fmt: skip
        assert reply["ok"], str(reply)
        tid = reply["result"]["transfer_id"]
        backup = lab.events.wait("transfer.backup_line", transfer_id=tid)["data"]
        assert (backup["reason"], backup["failed_line"]) == ("busy", "PJSIP/122@hotline-122")
        assert len(lab.sip_invites("busy", "122")) > busy_before
        returned = lab.events.wait("transfer.returned", transfer_id=tid, timeout=60)["data"]
        lab.wait_cli("core show channels concise", "PJSIP/agent1002-", timeout=30)  # cb-back rings the agent
        queue = wait_for(lambda: (q := lab.cli("queue show q-12345")) and re.search(r"q-12345 has [1-9]", q) and q,
                         60, label="a caller in q-12345")  # fmt: skip  (then the origin queue)
        waiting = re.findall(r"^\s+1\. (\S+)", queue, re.M)
        assert waiting and CALLER in lab.cli(f"core show channel {waiting[0]}"), queue
        ours = [line for line in lab.cli("core show channels concise").splitlines() if "cb-back" in line]
        assert ours, lab.cli("core show channels concise")
        assert never_bye(caller)
        lab.hang_up_everything()  # while frozen: no late 200 OK can answer a ring attempt of this scenario
    _drained(lab.agents, lab.trunks["ok"])
    # the frozen backup gives no SIP answer at all: Asterisk ends the Dial as unreachable (timer B)
    assert (returned["reason"], returned["line"]) == ("unreachable", "PJSIP/122@hotline-122-backup"), returned
    types = [e["type"].removeprefix("org.callbridge.") for e in lab.events.of_call(call_id)]
    assert "call.queued" in types[types.index("transfer.returned"):], types  # reported back in the origin queue
    assert not lab.events.of("transfer.answered", transfer_id=tid)
    lab.hang_up_everything()
