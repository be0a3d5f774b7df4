"""Live PBX: the rendered configuration loads as is; one-key blind transfers 12345 → 110 carry the number.

Three views per scenario: the SIP messages the 110 trunk received (From and P-Asserted-Identity carry
the caller's number), the MQTT events, and Asterisk's own (``core show channels``); the caller's SIPp
never receives a BYE (nobody but the caller ends a citizen's call).
"""

from __future__ import annotations

import re

import pytest
from conftest import CALLER, Lab, header, never_bye
from livepbx import INCLUDED, wait_for
from simtwin import hold_to_simulator

pytestmark = pytest.mark.live

#: load-time lines of the stock build that concern no configuration file (none are expected today)
STOCK_NOISE: tuple[str, ...] = ()



def test_rendered_configuration_loads_without_errors_or_warnings_about_callbridge_files(lab: Lab) -> None:
    full = lab.pbx.full_log()
    assert "Asterisk Ready" in full, full[-2000:]
    log = full[: full.index("Asterisk Ready")]  # the loading; later scenarios may log their own warnings
    problems = [line for line in log.splitlines() if re.search(r"\] (ERROR|WARNING)\[", line)]
    # nothing at all may be logged against the configuration; a stock module's own notice is listed here
    assert [line for line in problems if not any(re.search(p, line) for p in STOCK_NOISE)] == [], "\n".join(problems)
    # everything rendered is really loaded
    assert "cb-inbound" in lab.cli("dialplan show cb-inbound")
    assert "q-110-expert" in lab.cli("queue show q-110-expert")
    endpoints = lab.cli("pjsip show endpoints")
    for ep in ("hotline-110", "hotline-110-backup", "utility-water", "carrier", "agent1001", "agent2191"):
        assert re.search(rf"Endpoint:\s+{re.escape(ep)}\b", endpoints), ep
    assert "carrier" in lab.cli("pjsip show identifies")
    assert "callbridge" in lab.cli("moh show classes")
    features = lab.cli("features show")
    assert re.search(r"Attended Transfer\s+\*2", features), features  # Default column empty, Current *2
    user = lab.cli("manager show user callbridge")
    assert "callbridge" in user and "command" not in user.split("write perm:")[-1].split("\n")[0]
    assert all((lab.pbx.etc / name).is_file() for name in INCLUDED)
    secret_lines = [line for line in (lab.pbx.etc / "manager.d" / "callbridge.conf").read_text().splitlines()
                    if "live-test-secret" in line]  # fmt: skip
    assert secret_lines == ["secret = live-test-secret-not-for-production"]


def _assert_number_at_110_trunk(lab: Lab, before: int) -> None:
    invites = wait_for(lambda: lab.sip_invites("ok", "110")[before:], 20, label="INVITE at the 110 trunk")
    invite = invites[0]
    assert CALLER in header(invite, "From"), invite
    assert CALLER in header(invite, "P-Asserted-Identity"), invite


def test_blind_transfer_by_mqtt_carries_the_number_to_110(clean: Lab) -> None:
    lab = clean
    lab.only_agent("q-12345", "agent1002")
    before = len(lab.sip_invites("ok", "110"))
    caller, call_id = lab.call("12345")
    reply = lab.command("transfer", {"call_id": call_id, "agent": "agent1002", "to_hotline": "110",
                                     "category": "police"})  # fmt: skip
    assert reply["ok"], str(reply)
    answered = lab.events.wait("transfer.answered", call_id=call_id)
    assert answered["data"]["to_hotline"] == "110" and answered["data"]["mode"] == "blind"
    verified = lab.events.wait("transfer.number_verified", call_id=call_id)
    assert verified["data"]["presented_num"] == CALLER
    _assert_number_at_110_trunk(lab, before)
    channels = lab.cli("core show channels concise")
    assert "PJSIP/hotline-110-" in channels, channels
    assert never_bye(caller)
    # the simulator held to the PBX: the same scenario there gives the same domain events
    hold_to_simulator(lab.events.of_call(call_id), call_id, "blind_12345_to_110_mqtt", lab.root, CALLER)


def test_blind_transfer_by_rfc4733_dtmf_star1_from_the_agent(clean: Lab) -> None:
    """agent1001's phone sends RFC 4733 ``*``,``1`` after answering: the 12345 rule ``*1`` → 110."""
    lab = clean
    lab.only_agent("q-12345", "agent1001")
    before = len(lab.sip_invites("ok", "110"))
    caller, call_id = lab.call("12345")
    requested = lab.events.wait("transfer.requested", call_id=call_id)
    assert requested["data"]["to_hotline"] == "110"
    lab.events.wait("transfer.number_verified", call_id=call_id)
    _assert_number_at_110_trunk(lab, before)
    assert "PJSIP/hotline-110-" in lab.cli("core show channels concise")
    assert never_bye(caller)
