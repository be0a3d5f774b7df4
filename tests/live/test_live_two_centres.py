"""Live PBX, two centres (issue 21.4): the 12345 centre and the 110 centre, each its own real Asterisk 22
(rendered from ``dialplans/two-centres/`` and ``config/two-centres/``), joined by a PJSIP trunk on
loopback, each with its own ``callbridge run``, two mosquitto brokers bridged (:mod:`twocentres`).

Views: the INVITE the 110 PBX received (its pjsip logger), both AMI sessions (the recorders between each
daemon and its PBX), the events of both daemons at both brokers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import CALLER, header, never_bye
from livelab import Events, Lab
from livepbx import CannotRun, live_unavailable, wait_for
from twocentres import TwoCentres, open_two_centres

pytestmark = pytest.mark.live


def _open(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any) -> Iterator[TwoCentres]:
    reason = live_unavailable()
    if reason:
        pytest.skip(f"live-PBX suite skipped: {reason}")
    try:
        with open_two_centres(tmp_path_factory.mktemp(name), **kwargs) as centres:
            yield centres
    except CannotRun as exc:
        pytest.skip(f"live-PBX suite skipped: {exc}")


@pytest.fixture(scope="module")
def centres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoCentres]:
    yield from _open(tmp_path_factory, "two-centres")


@pytest.fixture
def fresh(centres: TwoCentres) -> Iterator[TwoCentres]:
    yield centres
    centres.hang_up_everything()


def _transfer_to_110(tc: TwoCentres, **extra: str) -> tuple[Any, str, str]:
    """A citizen calls 12345, agent1001 answers and transfers to 110 by one key (MQTT ``transfer``);
    returns the caller's SIPp, the 12345 call id and the transfer id."""
    caller, call_id = tc.c12345.call("12345")
    reply = tc.c12345.command("transfer", {"call_id": call_id, "agent": "agent1001", "to_hotline": "110",
                                           "category": "police", "ticket": "GD-2101", **extra})  # fmt: skip
    assert reply["ok"], str(reply)
    return caller, call_id, reply["result"]["transfer_id"]


def _offered_at_110(tc: TwoCentres, before: set[str]) -> dict[str, Any]:
    offered = wait_for(lambda: [e for e in tc.c110.events.of("call.offered", caller_num=CALLER)
                                if e["data"]["call_id"] not in before], 40, label="call.offered at 110")  # fmt: skip
    return offered[0]["data"]  # type: ignore[no-any-return]


def _calls_at_110(tc: TwoCentres) -> set[str]:
    return {e["data"]["call_id"] for e in tc.c110.events.of("call.offered")}


def test_both_centres_load_their_rendered_configuration_without_errors_or_warnings(centres: TwoCentres) -> None:
    for lab, trunk_endpoints in ((centres.c12345, ("centre-110", "centre-110-backup")),
                                 (centres.c110, ("centre-12345",))):  # fmt: skip
        full = lab.pbx.full_log()
        loading = full[: full.index("Asterisk Ready")]
        problems = [line for line in loading.splitlines() if re.search(r"\] (ERROR|WARNING)\[", line)]
        assert problems == [], f"{lab.site_id}:\n" + "\n".join(problems)
        endpoints = lab.cli("pjsip show endpoints")
        for ep in (*trunk_endpoints, "carrier"):
            assert re.search(rf"Endpoint:\s+{re.escape(ep)}\b", endpoints), (lab.site_id, ep)
        assert "cb-inbound" in lab.cli("dialplan show cb-inbound")
    assert "cb-handover-out" in centres.c12345.cli("dialplan show cb-handover-out")
    # each trunk leads to the other PBX's SIP port
    assert f"127.0.0.1:{centres.c110.pbx.sip_port}" in centres.c12345.cli("pjsip show aors")
    assert f"127.0.0.1:{centres.c12345.pbx.sip_port}" in centres.c110.cli("pjsip show aors")


def test_a_one_key_transfer_crosses_the_trunk_with_the_number_and_the_hand_over_id(fresh: TwoCentres) -> None:
    """12345 → 110 over the inter-centre trunk: the INVITE at the 110 PBX carries the caller's number (From,
    P-Asserted-Identity) and X-Callbridge-Handover; the 110 inbound leg holds CB_HANDOVER_IN (VarSet)."""
    tc = fresh
    with tc.recording("two_centres_hand_over_crosses_the_trunk_by_header",
                      "tests/live/test_live_two_centres.py::test_a_one_key_transfer_crosses_the_trunk_with_the_"
                      "number_and_the_hand_over_id: 12345 agent1001 transfers a citizen to 110 by MQTT; the call "
                      "crosses the trunk to the 110 PBX with X-Callbridge-Handover"):  # fmt: skip
        before, invites = _calls_at_110(tc), len(tc.invites_at_110())
        caller, call_id, tid = _transfer_to_110(tc)
        inbound = _offered_at_110(tc, before)
        invite = wait_for(lambda: tc.invites_at_110()[invites:], 20, label="INVITE at the 110 PBX")[0]
        assert CALLER in header(invite, "From"), invite
        assert CALLER in header(invite, "P-Asserted-Identity"), invite
        assert header(invite, "X-Callbridge-Handover") == tid, invite
        # the 110 PBX read it on the inbound leg: VarSet on that channel, in the 110 daemon's AMI session
        var = wait_for(lambda: [v for v in tc.var_sets(tc.c110, "CB_HANDOVER_IN")
                                if v["Uniqueid"] == inbound["call_id"]], 20, label="VarSet")[0]  # fmt: skip
        assert var["Value"] == tid and var["Channel"] == inbound["channel"], var
        assert inbound["did"] == "110" and inbound["hotline"] == "110"
        answered = tc.c12345.events.wait("transfer.answered", transfer_id=tid)["data"]
        assert answered["line"] == "PJSIP/110@centre-110" and answered["to_hotline"] == "110"
        verified = tc.c12345.events.wait("transfer.number_verified", transfer_id=tid)["data"]
        assert verified["presented_num"] == CALLER
        bound = tc.c110.events.wait("handover.bound", transfer_id=tid)["data"]
        assert (bound["match"], bound["call_id"], bound["remote_call_id"]) == ("header", inbound["call_id"], call_id)
        tc.c110.events.wait("call.answered", call_id=inbound["call_id"])  # a 110 agent took it
        assert never_bye(caller)


def _cli(lab: Lab, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "callbridge", *args, "--db", str(lab.root / "records.sqlite3")],
                          capture_output=True, text=True, timeout=60, check=True, cwd=lab.root)  # fmt: skip
    return proc.stdout


def _period_of(tc: TwoCentres, tid: str) -> str:
    """The hand-over's hour as a report period (aware ISO instants: the machine's zone does not matter)."""
    at = datetime.fromisoformat(tc.c12345.events.wait("transfer.requested", transfer_id=tid)["time"])
    return f"{(at - timedelta(minutes=5)).isoformat()}..{(at + timedelta(hours=1)).isoformat()}"


def _handover_rows(lab: Lab, period: str, tid: str, feedback: str) -> list[dict[str, str]]:
    """The rows of ``callbridge report --centres`` (CSV) for hand-over *tid* with that latest feedback."""
    text = _cli(lab, "report", "--centres", "--format", "csv", "--period", period)
    return [r for r in csv.DictReader(io.StringIO(text)) if r["transfer_id"] == tid and r["feedback"] == feedback]


def test_the_110_pop_and_records_carry_the_hand_over_and_the_feedback_returns_to_12345(fresh: TwoCentres) -> None:
    """The 110 daemon binds the inbound call by header (handover.bound: ticket, sending agent, category)
    before the 110 agent's phone rings, and records it; the 110 agent's feedback (handover_feedback)
    reaches the 12345 side's records: its report shows the transfer's outcome and the loop's, and either
    centre's ``report --centres`` the hand-over with both outcomes."""
    tc = fresh
    before = _calls_at_110(tc)
    caller, call_id, tid = _transfer_to_110(tc, summary="邻居家传出呼救声")
    bound = tc.c110.events.wait("handover.bound", transfer_id=tid, timeout=40)["data"]
    inbound = _offered_at_110(tc, before)["call_id"]
    assert (bound["match"], bound["call_id"], bound["ticket"], bound["agent"], bound["category"], bound["caller_num"],
            bound["summary"], bound["centre"]) == ("header", inbound, "GD-2101", "agent1001", "police", CALLER,
                                                   "邻居家传出呼救声", "c12345")  # fmt: skip
    agent = tc.c110.events.wait("call.answered", call_id=inbound)["data"]["agent"]
    # the pop is published before the 110 agent's phone rings (by seq: right behind the call.queued it binds,
    # even when the AMI read that queued the caller also rang the agent), at the moment the call queued
    seq: dict[str, tuple[int, str]] = {}
    for e in tc.c110.events.of_call(inbound):  # the first of each type
        seq.setdefault(e["type"].removeprefix("org.callbridge."), (e["seq"], e["time"]))
    assert seq["call.queued"][0] < seq["handover.bound"][0] < seq["call.ringing"][0] < seq["call.answered"][0], seq
    assert seq["handover.bound"][1] == seq["call.queued"][1] <= seq["call.ringing"][1], seq
    # a 110 agent really answered (not the 110 PBX picking up the trunk): told to 12345 over the link
    answered_env = tc.c110.events.wait("handover.answered", transfer_id=tid)
    answered = answered_env["data"]
    assert (answered["answered_agent"], answered["call_id"], answered["ticket"]) == (agent, inbound, "GD-2101")
    assert answered["wait_s"] > 0 and answered_env["seq"] > seq["call.answered"][0], answered_env
    tc.from_110.wait("handover.answered", transfer_id=tid)
    # the 110 records: the call's timeline holds the binding with the hand-over's data
    timeline = json.loads(_cli(tc.c110, "records", "--id", inbound))
    [recorded] = [e for e in timeline["events"] if e["type"] == "handover.bound"]
    assert (recorded["data"]["ticket"], recorded["data"]["agent"], recorded["data"]["transfer_id"]) == (
        "GD-2101", "agent1001", tid)  # fmt: skip
    # the 12345 side hears of the binding (over the bridge)
    tc.from_110.wait("handover.bound", transfer_id=tid)
    # the 110 agent's feedback, step by step, in the 12345 records
    reply = tc.c110.command("handover_feedback", {"transfer_id": tid, "agent": "agent2101", "outcome": "accepted"})
    assert reply["ok"] and reply["result"]["from_hotline"] == "12345", reply
    wait_for(lambda: f"{tid} (accepted)" in _cli(tc.c12345, "report", "--open-loops", "0"), 60, interval=1.0,
             label="the accepted hand-over as an open loop in the 12345 report")  # fmt: skip
    reply = tc.c110.command("handover_feedback", {"transfer_id": tid, "agent": "agent2101", "outcome": "resolved",
                                                  "ticket": "JJ-110-0001"})  # fmt: skip
    assert reply["ok"], str(reply)
    wait_for(lambda: tid not in _cli(tc.c12345, "report", "--open-loops", "0"), 60, interval=1.0,
             label="the resolved loop closed in the 12345 report")  # fmt: skip
    period = _period_of(tc, tid)
    kpis = _cli(tc.c12345, "report", "--period", period)
    assert re.search(r"^\| 12345 \| 110 \| (answered|completed) \| [1-9]", kpis, re.M), kpis
    rows = json.loads(_cli(tc.c12345, "records", "--id", call_id))
    assert [t["outcome"] for t in rows["transfers"] if t["transfer_id"] == tid] in (["answered"], ["completed"])
    # either centre's report of the pair's hand-overs: how 110 received it, the transfer's outcome, the feedback
    for lab, transfer in ((tc.c12345, ("answered", "completed")), (tc.c110, ("reached",))):
        [row] = wait_for(lambda lab=lab: _handover_rows(lab, period, tid, "resolved"), 60, interval=1.0,  # type: ignore[misc]
                         label=f"the hand-over in {lab.site_id}'s report")  # fmt: skip
        assert (row["received"], row["match"], row["ticket"], row["agent"], row["category"]) == (
            "bound", "header", "GD-2101", "agent1001", "police"), row  # fmt: skip
        assert row["transfer"] in transfer, row
        assert (row["reached"], row["answered_agent"]) == ("answered", agent), row  # the 110 agent, both sides
        assert row["at_receiver"].startswith(f"answered at 110 by {agent} after "), row
    assert re.search(r"^\| 12345 \| 110 \| bound \| [1-9]", _cli(tc.c110, "report", "--period", period), re.M)
    assert never_bye(caller)


def test_a_citizen_who_gives_up_in_the_110_queue_is_an_abandoned_hand_over_at_12345(fresh: TwoCentres) -> None:
    """No 110 agent free: the 110 PBX answers the trunk and queues the citizen (12345's own transfer.answered
    comes all the same); the citizen hangs up at 12345 while waiting — the 110 daemon reports the hand-over
    abandoned (handover.abandoned), which the 12345 side takes in and its report shows."""
    tc = fresh
    tc.c110.pause_all("q-110")
    try:
        before = _calls_at_110(tc)
        _caller, call_id, tid = _transfer_to_110(tc)
        inbound = _offered_at_110(tc, before)["call_id"]
        tc.c12345.events.wait("transfer.answered", transfer_id=tid)  # the 110 PBX picked up the trunk
        tc.c110.events.wait("handover.bound", transfer_id=tid, timeout=40)
        citizen = tc.c12345.events.wait("call.offered", call_id=call_id)["data"]["channel"]
        tc.c12345.cli(f"channel request hangup {citizen}")  # the citizen gives up, waiting in the 110 queue
        abandoned = tc.c110.events.wait("handover.abandoned", transfer_id=tid, timeout=40)["data"]
        assert (abandoned["call_id"], abandoned["reason"], abandoned["ticket"]) == (
            inbound, "abandoned_in_queue", "GD-2101"), abandoned  # fmt: skip
        assert abandoned["wait_s"] > 0 and not tc.c110.events.of("handover.answered", transfer_id=tid)
        tc.from_110.wait("handover.abandoned", transfer_id=tid)
        period = _period_of(tc, tid)
        [row] = wait_for(lambda: _handover_rows(tc.c12345, period, tid, ""), 60, interval=1.0,
                         label="the abandoned hand-over in 12345's report")  # fmt: skip
        assert (row["received"], row["reached"], row["answered_agent"]) == ("bound", "abandoned", ""), row
        assert row["at_receiver"].startswith("abandoned at 110 after ") and "abandoned_in_queue" in row["at_receiver"]
    finally:
        tc.c110.pause_all("q-110", paused=False)
        tc.hang_up_everything()


def _seqs(events: Events, site: str) -> list[int]:
    with events.lock:
        return sorted(e["seq"] for e in events.items if e.get("source") == f"callbridge/{site}")


def _ids(events: Events, site: str) -> set[str]:
    with events.lock:
        return {e["id"] for e in events.items if e.get("source") == f"callbridge/{site}"}


def test_the_broker_bridge_down_for_60_s_during_the_transfer_loses_nothing(fresh: TwoCentres) -> None:
    """The 110 broker (it holds the bridge) stopped for 60 s while 12345 hands a call over to 110, then
    started again: every event of each daemon reaches the other centre's broker, counted by seq."""
    tc = fresh
    before = {e["data"]["call_id"] for e in tc.own_110.of("call.offered")}
    caller, call_id = tc.c12345.call("12345")
    down = time.monotonic()
    tc.bridge_broker.stop()  # SIGTERM: it saves its sessions (persistence, as a site runs it)
    try:
        reply = tc.c12345.command("transfer", {"call_id": call_id, "agent": "agent1001", "to_hotline": "110",
                                               "category": "police", "ticket": "GD-2102"})  # fmt: skip
        assert reply["ok"], str(reply)
        tid = reply["result"]["transfer_id"]
        tc.c12345.events.wait("transfer.answered", transfer_id=tid)
        tc.c110.wait_cli("core show channels concise", "PJSIP/agent2101-")  # a 110 agent took the call
        time.sleep(max(0.0, 60.0 - (time.monotonic() - down)))  # the outage lasts 60 s (not a wait for an event)
    finally:
        tc.bridge_broker.start()
    # the 12345 daemon's events, all seen at its own broker (never down), all reach the 110 broker
    sent_12345 = _ids(tc.c12345.events, "c12345")
    assert tc.c12345.events.of("transfer.requested", transfer_id=tid)
    wait_for(lambda: sent_12345 <= _ids(tc.from_12345, "c12345"), 90, label="12345's events at the 110 broker")
    assert _seqs(tc.from_12345, "c12345") == list(range(1, max(_seqs(tc.from_12345, "c12345")) + 1))
    # the 110 daemon published its side of the call once its broker was back; all of it reaches 12345
    offered = wait_for(lambda: [e for e in tc.own_110.of("call.offered", caller_num=CALLER)
                                if e["data"]["call_id"] not in before], 90, label="110's call.offered")  # fmt: skip
    wait_for(lambda: _ids(tc.own_110, "c110") <= _ids(tc.from_110, "c110"), 90, label="110's events at 12345")
    seqs = _seqs(tc.from_110, "c110")
    assert seqs == list(range(1, seqs[-1] + 1)), f"gaps in the 110 daemon's seq at the 12345 broker: {seqs}"
    assert offered[0]["seq"] in seqs
    # the 110 daemon bound its call once the hand-over data came through (late, by header), and 12345 knows
    bound = tc.own_110.wait("handover.bound", transfer_id=tid, timeout=60)["data"]
    assert bound["match"] == "header" and bound["call_id"] == offered[0]["data"]["call_id"], bound
    tc.from_110.wait("handover.bound", transfer_id=tid, timeout=60)
    assert never_bye(caller)


def test_the_110_centre_unreachable_backup_line_then_back_to_the_sending_agent(fresh: TwoCentres) -> None:
    """The 110 PBX hangs (SIGSTOP) while 12345 hands a call over: the primary line and then the backup
    line (both to the 110 centre) get no SIP answer, cb-back rings agent1001 again; the hand-over is
    returned at 12345 and marked failed at 110 (handover.failed), which 12345 hears."""
    tc = fresh
    with tc.frozen_110():
        caller, call_id, tid = _transfer_to_110(tc)
        backup = tc.c12345.events.wait("transfer.backup_line", transfer_id=tid, timeout=40)["data"]
        assert backup["failed_line"] == "PJSIP/110@centre-110", backup
        returned = tc.c12345.events.wait("transfer.returned", transfer_id=tid, timeout=40)["data"]
        assert returned["to_hotline"] == "110", returned
        assert not tc.c12345.events.of("transfer.answered", transfer_id=tid)
        # the 110 daemon (its PBX frozen, its broker up) marks the pending hand-over failed; 12345 hears it
        failed = tc.c110.events.wait("handover.failed", transfer_id=tid, timeout=30)["data"]
        assert (failed["outcome"], failed["ticket"], failed["agent"]) == ("returned", "GD-2101", "agent1001"), failed
        tc.from_110.wait("handover.failed", transfer_id=tid)
        # both centres' records: the hand-over failed, returned by the sender, no feedback
        period = _period_of(tc, tid)
        for lab in (tc.c12345, tc.c110):
            [row] = wait_for(lambda lab=lab: _handover_rows(lab, period, tid, ""), 60, interval=1.0,  # type: ignore[misc]
                             label=f"the failed hand-over in {lab.site_id}'s report")  # fmt: skip
            assert (row["received"], row["transfer"], row["ticket"]) == ("failed", "returned", "GD-2101"), row
        tc.c12345.wait_cli("core show channels concise", "PJSIP/agent1001-")  # cb-back rang the agent again
        wait_for(lambda: len(tc.c12345.events.of("call.answered", call_id=call_id, agent="agent1001")) == 2, 30,
                 label="agent1001 answers the returned caller")  # fmt: skip
        assert never_bye(caller)
    # resumed, the 110 PBX reads the INVITEs of both lines it had buffered (the hand-over id on each)
    # and answers them late: stale calls, hung up here
    stale = wait_for(lambda: len({header(m, "Call-ID") for m in tc.invites_at_110()
                                  if header(m, "X-Callbridge-Handover") == tid}) == 2 or None, 30,
                     label="both lines' INVITEs at the resumed 110 PBX")  # fmt: skip
    assert stale
    tc.hang_up_everything()


@pytest.fixture(scope="module")
def stripped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoCentres]:
    yield from _open(tmp_path_factory, "two-centres-stripped", strip_header=True)


def test_a_110_trunk_that_does_not_read_the_header_leaves_the_inbound_leg_without_it(stripped: TwoCentres) -> None:
    """The 110 side's inbound trunk without handover_header (as if the peer PBX stripped it): the INVITE
    still carries it, the 110 inbound leg has no CB_HANDOVER_IN; the 110 daemon binds by caller number."""
    tc = stripped
    before, invites = _calls_at_110(tc), len(tc.invites_at_110())
    caller, _call_id, tid = _transfer_to_110(tc)
    inbound = _offered_at_110(tc, before)
    invite = wait_for(lambda: tc.invites_at_110()[invites:], 20, label="INVITE at the 110 PBX")[0]
    assert header(invite, "X-Callbridge-Handover") == tid and CALLER in header(invite, "From"), invite
    tc.c110.events.wait("call.answered", call_id=inbound["call_id"])  # the queue and an agent came after
    assert "PJSIP_HEADER(read" not in tc.c110.cli("dialplan show 110@cb-inbound")
    assert [v for v in tc.var_sets(tc.c110, "CB_HANDOVER_IN") if v["Linkedid"] == inbound["call_id"]] == []
    # so the 110 daemon binds it by the caller's number (within the window) and says so
    bound = tc.c110.events.wait("handover.bound", transfer_id=tid)["data"]
    assert (bound["match"], bound["call_id"], bound["ticket"]) == ("caller_number", inbound["call_id"], "GD-2101")
    tc.from_110.wait("handover.bound", transfer_id=tid)
    assert never_bye(caller)
    tc.hang_up_everything()
