"""Pure parts: topic names and sanitising, envelope ids, outbox coalescing and bound re-arming."""

from __future__ import annotations

import string
import time
from pathlib import Path

import orjson
import pytest
from bus_helpers import HandOver, Ping
from hypothesis import given
from hypothesis import strategies as st

from callbridge.bus.envelope import build, decode, uuid7
from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.state import state_message
from callbridge.bus.topics import Topics, UnsafeTopicPart, topic_part

T = Topics("lab")


@given(st.text(max_size=40))
def test_a_topic_part_is_one_safe_level_or_refused(value: str) -> None:
    try:
        part = topic_part(value)
    except UnsafeTopicPart:
        alnum = string.ascii_letters + string.digits
        assert not (0 < len(value) <= 128 and value[0] in alnum + "_" and set(value) <= set(alnum + "_.@:=~-"))
        return
    assert part == value and not set(part) & {"+", "#", "/", "\x00"} and not part.startswith("$")
    assert part.isascii() and part.isprintable()


@pytest.mark.parametrize("bad", ["a/b/#", "1+1", "$SYS", "", "x\x85", "x\ufdd0", "x\uffff", "中", "a b", "x" * 129])
def test_the_topic_builder_refuses_every_unvalidated_part(bad: str) -> None:
    for build_topic in (T.call, T.hotline_state, T.queue_state, T.agent_state, T.reply, T.command):
        if bad == "" and build_topic == T.reply:
            continue  # no reply_to: the default reply topic
        with pytest.raises(UnsafeTopicPart):
            build_topic(bad)
    with pytest.raises(UnsafeTopicPart):
        T.event(bad or "x", "x.y" if bad else "x..y")
    with pytest.raises(UnsafeTopicPart):
        T.state(f"hotlines/{bad}")


def test_an_event_with_an_unsafe_hotline_or_call_id_keeps_its_safe_topics() -> None:
    ev = HandOver(ts=1.0, call_id="c1\x85", hotline="12345", to_hotline="11\ufdd0", caller_num="1")
    assert T.for_event(ev) == ["callbridge/lab/events/12345/test/handover", "callbridge/lab/events/_/test/handover"]


def test_valid_parts_make_the_documented_topics() -> None:
    assert T.call("1790000000.17") == "callbridge/lab/calls/1790000000.17"
    assert T.event("110", "x.y") == "callbridge/lab/events/110/x/y"
    assert T.reply(None) == "callbridge/lab/reply/default"
    assert T.command_filter("g1") == "$share/g1/callbridge/lab/cmd/+"
    assert T.verb_of("callbridge/lab/cmd/transfer") == "transfer"
    assert T.verb_of("callbridge/other/cmd/transfer") is None
    assert T.events_filter("110") == "callbridge/lab/events/110/#"


def test_event_topics_primary_then_other_hotlines_then_call() -> None:
    ev = HandOver(ts=1.0, call_id="c1", hotline="12345", to_hotline="110", caller_num="1")
    assert T.for_event(ev) == [
        "callbridge/lab/events/12345/test/handover",
        "callbridge/lab/events/110/test/handover",
        "callbridge/lab/calls/c1",
    ]
    same = HandOver(ts=1.0, call_id=None, hotline="110", to_hotline="110", caller_num="1")
    assert T.for_event(same) == ["callbridge/lab/events/110/test/handover"]


def test_envelope_ids_are_unique_time_ordered_uuid7() -> None:
    ids = [uuid7(now_ms=1_000 + i) for i in range(200)]
    assert len(set(ids)) == 200 and ids == sorted(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    env = build(Ping(ts=time.time(), n=1), site="lab", seq=3, event_id="fixed")
    assert decode(env.payload)["id"] == "fixed" and env.seq == 3


def test_state_rows_coalesce_while_unpublished(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.append([state_message(T, "hotlines/110", {"waiting": 1})])
        box.append([OutgoingMessage("e", b"event")])
        box.append([state_message(T, "hotlines/110", {"waiting": 2})])
        rows = box.pending()
        assert [r.payload for r in rows] == [b"event", b'{"waiting":2}']
        assert rows[1].retain and rows[1].kind == "state" and box.depth == 2


def test_full_alarm_fires_once_per_episode_and_rearms_below_the_mark(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_rows=10, rearm_ratio=0.5) as box:
        box.append([OutgoingMessage("e", b"%d" % i) for i in range(10)])
        first = box.append([OutgoingMessage("e", b"x")])
        again = box.append([OutgoingMessage("e", b"y")])
        assert first.became_full and first.dropped_events == 1
        assert not again.became_full and again.dropped_events == 1 and box.full
        box.ack([r.seq for r in box.pending(limit=4)])  # depth 6: still above 5
        assert box.full
        box.ack([r.seq for r in box.pending(limit=2)])  # depth 4: re-armed
        assert not box.full
        box.append([OutgoingMessage("e", b"z%d" % i) for i in range(6)])
        assert box.append([OutgoingMessage("e", b"w")]).became_full
        assert box.dropped_events == 3


def test_envelope_seq_survives_reopening(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        seqs = [box.next_event_seq() for _ in range(3)]
        box.append([OutgoingMessage("e", orjson.dumps({"seq": seqs[-1]}))])
    with Outbox(tmp_path / "o.db") as box:
        assert box.next_event_seq() == 4
