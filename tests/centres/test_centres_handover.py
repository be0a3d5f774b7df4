"""Two centres (issue 21.1): the hand-over id crosses the inter-centre trunk; the receiving side binds it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from callbridge.bus.envelope import build
from callbridge.calls.events import CallEnded, CallQueued
from callbridge.centres.binder import HandoverBinder
from callbridge.centres.events import HandoverBound, HandoverFailed
from callbridge.centres.header import HEADER, INBOUND_VAR, PREDIAL_CONTEXT, handover_id
from callbridge.centres.link import PeerEventRefused, SeenIds, peer_event, peer_filters
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.dialplan.render_conf import render_all
from callbridge.dialplan.site import load_site
from callbridge.domain import DomainEvent
from callbridge.engine.events import TransferFailed, TransferRequested

REPO = Path(__file__).resolve().parents[2]
CENTRES = REPO / "dialplans" / "two-centres"


def _context(text: str, name: str) -> str:
    start = text.index(f"[{name}]\n")
    end = text.find("\n[", start + 1)
    return text[start : end if end != -1 else len(text)]


# --- the Asterisk side ------------------------------------------------------------------------------


def test_the_inter_centre_trunk_adds_the_header_on_the_outbound_leg_and_carries_the_number() -> None:
    plan = load_dialplan(CENTRES / "12345")
    files = render_all(plan, site=load_site(REPO / "config" / "two-centres" / "site-12345.yaml"))
    ext = files["extensions_callbridge.conf"]
    to110 = _context(ext, "cb-to-110")
    # every line of the trunk (primary and backup) dials with the pre-dial handler: it runs on the
    # outbound channel, the only one whose INVITE a PJSIP_HEADER(add) reaches
    assert f"Dial(PJSIP/110@centre-110,${{CB_TIMEOUT}},b({PREDIAL_CONTEXT}^s^1))" in to110
    assert f"Dial(PJSIP/110@centre-110-backup,${{CB_TIMEOUT}},b({PREDIAL_CONTEXT}^s^1))" in to110
    assert "Set(CALLERID(num)=${CB_CALLER_NUM})" in to110  # From carries the citizen's number
    predial = _context(ext, PREDIAL_CONTEXT)
    assert f"Set(PJSIP_HEADER(add,{HEADER})=${{CB_XFER_ID}})" in predial and "Return()" in predial
    pjsip = files["pjsip_callbridge.conf"]
    trunk = pjsip[pjsip.index("[cb-trunk-t-110-centre]") :].split("\n[", 1)[0]
    assert "send_pai = yes" in trunk  # P-Asserted-Identity


def test_the_receiving_centre_reads_the_header_into_a_channel_variable_before_the_queue() -> None:
    ext = render_extensions(load_dialplan(CENTRES / "110"))
    inbound = _context(ext, "cb-inbound")
    read = f"Set(__{INBOUND_VAR}=${{PJSIP_HEADER(read,{HEADER})}})"
    assert read in inbound and inbound.index(read) < inbound.index("Queue(q-110")


def test_a_plan_without_inter_centre_trunks_renders_as_before() -> None:
    ext = render_extensions(load_dialplan(REPO / "dialplans"))
    # no trunk dial runs a pre-dial handler (the expert queues' b(cb-expert-seat^s^1) is not about centres)
    assert HEADER not in ext and PREDIAL_CONTEXT not in ext and f"b({PREDIAL_CONTEXT}" not in ext
    assert not [line for line in ext.splitlines() if "Dial(" in line and "b(" in line]


@pytest.mark.parametrize(
    ("raw", "valid"),
    [("3f2a9c01be77", "3f2a9c01be77"), (" 3f2a9c01be77 ", "3f2a9c01be77"), ("", None),
     ("x\r\nAction: Originate", None), ("a/../b", None), ("a" * 129, None), ("12345/#", None)],
)  # fmt: skip
def test_the_header_value_is_checked_before_it_is_used(raw: str, valid: str | None) -> None:
    assert handover_id(raw) == valid


# --- binding ----------------------------------------------------------------------------------------


def _requested(xfer: str = "a1b2c3d4e5f6", num: str = "13800138000", ts: float = 1000.0) -> TransferRequested:
    return TransferRequested(ts=ts, call_id="1790000000.1", hotline="12345", transfer_id=xfer,
                             from_hotline="12345", to_hotline="110", caller_num=num, agent="agent1001",
                             category="police", ticket="GD-0001", summary="邻居家传出呼救声", mode="blind",
                             source="dtmf")  # fmt: skip


def _queued(call: str = "1790000500.9", num: str = "13800138000", ts: float = 1005.0, hotline: str = "110",
            channel: str = "PJSIP/carrier-00000003") -> CallQueued:  # fmt: skip
    return CallQueued(ts=ts, call_id=call, hotline=hotline, queue="q-110", position=1, count=1, caller_num=num,
                      channel=channel)  # fmt: skip


class Desk:
    def __init__(self, headers: dict[str, str] | None = None, window_s: float = 120.0) -> None:
        self.out: list[DomainEvent] = []
        self.headers = headers or {}
        self.binder = HandoverBinder(self.out.extend, hotlines=lambda: frozenset({"110"}),
                                     header_of=lambda ch: self.headers.get(ch, ""), centre="c12345",
                                     window_s=window_s)  # fmt: skip


def test_bound_by_the_header_with_the_hand_over_data() -> None:
    d = Desk({"PJSIP/carrier-00000003": "a1b2c3d4e5f6"})
    d.binder.remote([_requested("ffffffffffff", ts=999.0), _requested()])  # the same number twice: the header decides
    d.binder([_queued()])
    [bound] = d.out
    assert isinstance(bound, HandoverBound)
    assert (bound.match, bound.transfer_id, bound.ticket, bound.agent, bound.category) == (
        "header",
        "a1b2c3d4e5f6",
        "GD-0001",
        "agent1001",
        "police",
    )
    assert (bound.call_id, bound.hotline, bound.also_hotlines(), bound.remote_call_id) == (
        "1790000500.9",
        "110",
        ("12345",),
        "1790000000.1",
    )


def test_without_the_header_bound_by_caller_number_within_the_window_and_says_so() -> None:
    d = Desk()
    d.binder.remote([_requested(num="+8613800138000")])  # numbers compared normalised
    d.binder([_queued(call="1790000500.1", num="13900000000")])  # someone else: not bound
    assert d.out == []
    d.binder([_queued(call="1790000500.2")])
    [bound] = d.out
    assert isinstance(bound, HandoverBound) and bound.match == "caller_number"


def test_an_invalid_header_falls_back_to_the_number_and_a_call_outside_the_window_is_not_bound() -> None:
    d = Desk({"PJSIP/carrier-00000003": "bad value\r\nX: y"}, window_s=60.0)
    d.binder.remote([_requested(ts=1000.0)])
    d.binder([_queued(ts=1100.0)])  # 100 s later: outside the window
    assert d.out == []
    d2 = Desk({"PJSIP/carrier-00000003": "bad value\r\nX: y"}, window_s=60.0)
    d2.binder.remote([_requested(ts=1000.0)])
    d2.binder([_queued(ts=1030.0)])
    assert [getattr(e, "match", "") for e in d2.out] == ["caller_number"]


def test_the_call_first_and_the_data_late_is_bound_when_the_data_arrives() -> None:
    d = Desk({"PJSIP/carrier-00000003": "a1b2c3d4e5f6"})
    d.binder([_queued(ts=1005.0)])
    assert d.out == []
    d.binder.remote([_requested(ts=1000.0)])  # the bridge came back: the data arrives after the call
    assert [(e.TYPE, getattr(e, "match", "")) for e in d.out] == [("handover.bound", "header")]
    d.binder.remote([_requested(ts=1000.0)])  # a redelivery binds nothing twice
    assert len(d.out) == 1


def test_a_hand_over_the_sender_reports_failed_is_marked_failed_here() -> None:
    d = Desk()
    d.binder.remote([_requested()])
    d.binder.remote([TransferFailed(ts=1030.0, call_id="1790000000.1", hotline="12345",
                                    transfer_id="a1b2c3d4e5f6", from_hotline="12345", to_hotline="110",
                                    reason="unreachable")])  # fmt: skip
    [failed] = d.out
    assert isinstance(failed, HandoverFailed)
    assert (failed.outcome, failed.reason, failed.hotline, failed.also_hotlines()) == (
        "failed",
        "unreachable",
        "110",
        ("12345",),
    )
    d.binder([_queued()])  # no longer pending: a later call of the number is not bound to it
    assert len(d.out) == 1


def test_hand_overs_to_another_hotline_and_other_hotlines_calls_are_ignored() -> None:
    d = Desk()
    d.binder.remote([TransferRequested(ts=1000.0, transfer_id="aaaaaaaaaaaa", from_hotline="12345",
                                       to_hotline="119", caller_num="13800138000")])  # fmt: skip
    d.binder([_queued(call="x.1", hotline="12345")])  # a call of a hotline this centre does not serve here
    d.binder([_queued()])
    assert d.out == []  # the 119 hand-over is not ours: the 110 call waits for its data
    d.binder.remote([_requested()])
    assert [e.call_id for e in d.out] == ["1790000500.9"]


# --- the link ---------------------------------------------------------------------------------------


def test_peer_events_come_back_from_their_envelopes_and_refuse_what_is_not_the_peers() -> None:
    env = build(_requested(), site="c12345", seq=7)
    eid, event = peer_event(env.payload, peer_site="c12345")
    assert eid == env.id and isinstance(event, TransferRequested)
    assert (event.transfer_id, event.ticket, event.summary, event.call_id) == (
        "a1b2c3d4e5f6",
        "GD-0001",
        "邻居家传出呼救声",
        "1790000000.1",
    )
    assert abs(event.ts - 1000.0) < 0.002
    with pytest.raises(PeerEventRefused, match="not the peer"):
        peer_event(env.payload, peer_site="c110")
    bad = orjson.loads(env.payload)
    bad["data"]["to_hotline"] = "110/#"
    with pytest.raises(PeerEventRefused, match="to_hotline"):
        peer_event(orjson.dumps(bad), peer_site="c12345")
    bad["data"]["to_hotline"] = "110"
    bad["type"] = "org.callbridge.call.ended"
    with pytest.raises(PeerEventRefused, match="not a hand-over event"):
        peer_event(orjson.dumps(bad), peer_site="c12345")
    with pytest.raises(PeerEventRefused):
        peer_event(b"{not json", peer_site="c12345")


def test_the_link_subscribes_to_the_peers_hand_over_events_under_our_hotlines_and_dedups() -> None:
    assert peer_filters("callbridge", "c12345", frozenset({"110"})) == [
        "callbridge/c12345/events/110/transfer/#",
        "callbridge/c12345/events/110/handover/#",
    ]
    seen = SeenIds(remember=2)
    assert [seen.first_time(i) for i in ("a", "a", "b", "c", "a")] == [True, False, True, True, True]


def test_an_ended_call_waits_no_more_and_the_late_data_stays_pending_for_another() -> None:
    d = Desk()
    d.binder([_queued(call="1790000500.3", num="13700000000")])
    assert list(d.binder.waiting) == ["1790000500.3"]
    d.binder([CallEnded(ts=1006.0, call_id="1790000500.3", hotline="110")])
    assert not d.binder.waiting  # nothing kept for a call that is over
    d.binder.remote([_requested(num="13700000000")])
    assert d.out == [] and list(d.binder.pending) == ["a1b2c3d4e5f6"]
