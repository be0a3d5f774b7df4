"""Two centres (issue 21): the binding goes out before the agent rung in the same batch, and the receiving
centre tells what became of the bound call — an agent there answered it, or the caller gave up."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path

import orjson
import pytest

from callbridge.bus.envelope import build
from callbridge.calls.events import CallAnswered, CallEnded, CallRinging, QueueAbandoned
from callbridge.centres.events import HandoverAbandoned, HandoverAnswered, HandoverBound
from callbridge.centres.link import PeerEventRefused, peer_event
from callbridge.centres.report import centre_handovers, render_centres
from callbridge.domain import DomainEvent
from callbridge.runtime.engine_service import EngineService
from callbridge.store.records import RecordStore
from tests.centres.test_centres_handover import Desk, _queued, _requested
from tests.engine.pbx import Pbx

CALL = "1790000500.9"
CHANNEL = "PJSIP/carrier-00000003"


def _ringing(ts: float = 1005.0) -> CallRinging:
    return CallRinging(ts=ts, call_id=CALL, hotline="110", agent="agent2101", queue="q-110")


def _answered(agent: str = "agent2101", ts: float = 1012.0, wait_s: float = 7.5) -> CallAnswered:
    return CallAnswered(ts=ts, call_id=CALL, hotline="110", agent=agent, queue="q-110", wait_s=wait_s)


def test_the_binding_is_placed_right_behind_its_call_queued_before_the_ringing_of_the_same_batch() -> None:
    d = Desk({CHANNEL: "a1b2c3d4e5f6"})
    d.binder.remote([_requested()])
    batch = d.binder.interleave([_queued(), _ringing()])
    assert [e.TYPE for e in batch] == ["call.queued", "handover.bound", "call.ringing"]
    assert d.out == []  # nothing published behind the batch: the binding is inside it
    assert d.binder.interleave([_ringing(1006.0)]) == [_ringing(1006.0)]  # considered once


def test_the_pbx_answering_the_trunk_is_not_an_answer_an_agent_answering_is() -> None:
    d = Desk({CHANNEL: "a1b2c3d4e5f6"})
    d.binder.remote([_requested()])
    out = d.binder.interleave([_queued(), _answered(agent="", ts=1005.5), _answered()])
    [answered] = [e for e in out if isinstance(e, HandoverAnswered)]
    assert out.index(answered) == len(out) - 1  # right behind the agent's call.answered
    assert (answered.answered_agent, answered.wait_s, answered.transfer_id, answered.ticket, answered.match) == (
        "agent2101", 7.5, "a1b2c3d4e5f6", "GD-0001", "header")  # fmt: skip
    assert answered.also_hotlines() == ("12345",)  # told back to the sending centre
    later = d.binder.interleave([_answered(agent="agent2102", ts=1100.0), CallEnded(ts=1200.0, call_id=CALL,
                                                                                     hotline="110")])  # fmt: skip
    assert [e.TYPE for e in later] == ["call.answered", "call.ended"]  # the first answer only; no abandon


def test_a_bound_caller_who_gives_up_in_the_queue_is_an_abandoned_hand_over() -> None:
    d = Desk()
    d.binder.remote([_requested()])
    out = d.binder.interleave([_queued(ts=1005.0), QueueAbandoned(ts=1030.0, call_id=CALL, hotline="110",
                                                                   queue="q-110", hold_s=25),
                               CallEnded(ts=1030.5, call_id=CALL, hotline="110")])  # fmt: skip
    [abandoned] = [e for e in out if isinstance(e, HandoverAbandoned)]
    assert (abandoned.reason, abandoned.wait_s, abandoned.match, abandoned.ticket) == (
        "abandoned_in_queue", 25.5, "caller_number", "GD-0001")  # fmt: skip
    assert CALL not in d.binder.of_call  # nothing kept for a call that is over


def test_a_call_answered_before_its_data_arrived_is_reported_answered_once_bound() -> None:
    d = Desk({CHANNEL: "a1b2c3d4e5f6"})
    assert d.binder.interleave([_queued(), _answered()])[-1].TYPE == "call.answered"  # no data yet
    d.binder.remote([_requested()])
    assert [e.TYPE for e in d.out] == ["handover.bound", "handover.answered"]
    assert isinstance(d.out[1], HandoverAnswered) and d.out[1].answered_agent == "agent2101"


FIELDS = {"from_hotline": "12345", "to_hotline": "110", "caller_num": "13800138000", "agent": "agent1001",
          "category": "police", "ticket": "GD-0001", "centre": "c12345"}  # fmt: skip


def test_the_report_shows_who_answered_at_the_receiver_and_after_how_long(tmp_path: Path) -> None:
    store = RecordStore.sqlite(tmp_path / "r.sqlite3")
    store.write([
        HandoverBound(ts=5000.0, call_id="c.1", hotline="110", transfer_id="x1", match="header", **FIELDS),
        HandoverBound(ts=5001.0, call_id="c.2", hotline="110", transfer_id="x2", match="header", **FIELDS),
        HandoverBound(ts=5002.0, call_id="c.3", hotline="110", transfer_id="x3", match="header", **FIELDS),
        HandoverAnswered(ts=5009.0, call_id="c.1", hotline="110", transfer_id="x1", answered_agent="agent2101",
                         wait_s=9.0, **FIELDS),
        HandoverAbandoned(ts=5031.0, call_id="c.2", hotline="110", transfer_id="x2", reason="abandoned_in_queue",
                          wait_s=30.0, **FIELDS),
    ])  # fmt: skip
    rows = {h.transfer_id: h for h in centre_handovers(store.backend, start=0.0, end=10_000.0)}
    assert (rows["x1"].reached, rows["x1"].answered_agent, rows["x1"].wait_s) == ("answered", "agent2101", 9.0)
    assert (rows["x2"].reached, rows["x2"].reached_reason) == ("abandoned", "abandoned_in_queue")
    assert (rows["x3"].reached, rows["x3"].at_receiver()) == ("", "")  # still waiting there
    text = render_centres(list(rows.values()), label="test")
    assert "| answered at 110 by agent2101 after 9 s |" in text
    assert "| abandoned at 110 after 30 s (abandoned_in_queue) |" in text
    csv_text = render_centres(list(rows.values()), label="test", fmt="csv")
    assert csv_text.splitlines()[0].endswith(",reached,answered_agent,wait_s,at_receiver")
    store.close()


def test_the_senders_link_takes_in_the_answer_and_refuses_an_agent_outside_its_alphabet() -> None:
    event = HandoverAnswered(ts=5009.0, call_id="1790000500.9", hotline="110", transfer_id="a1b2c3d4e5f6",
                             answered_agent="agent2101", wait_s=9.0, **FIELDS)  # fmt: skip
    env = build(event, site="c110", seq=3)
    _, back = peer_event(env.payload, peer_site="c110")
    assert isinstance(back, HandoverAnswered) and (back.answered_agent, back.wait_s) == ("agent2101", 9.0)
    bad = orjson.loads(env.payload)
    bad["data"]["answered_agent"] = "agent2101\r\nAction: Originate"
    with pytest.raises(PeerEventRefused, match="answered_agent"):
        peer_event(orjson.dumps(bad), peer_site="c110")


class _NoAmi:
    def write_now(self, action: object) -> Awaitable[object]:
        raise AssertionError(f"no action expected: {action!r}")


def test_the_engine_service_stage_runs_before_every_sink_and_a_failing_stage_passes_the_batch_on() -> None:
    pbx = Pbx()
    got: list[list[str]] = []
    d = Desk({CHANNEL: "a1b2c3d4e5f6"})
    d.binder.remote([_requested()])
    svc = EngineService(pbx.engine, pbx.tracker, _NoAmi(), [lambda b: got.append([e.TYPE for e in b])],  # type: ignore[arg-type]
                        stage=d.binder.interleave)  # fmt: skip
    svc.emit([_queued(), _ringing()])
    assert got == [["call.queued", "handover.bound", "call.ringing"]]

    def broken(events: Sequence[DomainEvent]) -> list[DomainEvent]:
        raise RuntimeError("a bug in the stage")

    svc.stage = broken
    svc.emit([_ringing(1007.0)])
    assert got[-1] == ["call.ringing"]  # the batch still reaches the sinks, as it came
