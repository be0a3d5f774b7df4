"""What a tracked call costs, as structure (issue 19.5): each memory fix of the tracker's records, asserted.

The calls are the memory benchmark's realistic ones (``bench/memory.py``: trunk leg queued, agent answered and
bridged, an expert dialled into the same bridge: 3 channels, 1 bridge), fed as AMI bytes through the framer,
the decoder and the tracker. The figure itself (KiB per call, as RSS) is the benchmark's, not a test's.
"""

from __future__ import annotations

import random

import pytest

from bench.memory import open_call_bytes
from callbridge.ami.decode import decode, decode_headers
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls import rooms
from callbridge.calls.model import (
    NO_TRANSFERS,
    NO_VARIABLES,
    NOTHING,
    Bridge,
    Call,
    Channel,
    Queue,
    QueueCaller,
    Transfer,
    Uids,
    Variables,
)
from callbridge.calls.tracker import CallTracker

CALLS = 20


@pytest.fixture(scope="module")
def tracker() -> CallTracker:
    t = CallTracker()
    framer = AmiFramer(expect_banner=False)
    rng = random.Random(5)
    for n in range(CALLS):
        for raw in open_call_bytes(n, rng):
            for frame in framer.feed(raw):
                if type(frame) is AmiMessage:
                    t.feed(decode(frame))
    return t


def test_the_realistic_call_is_three_channels_and_one_bridge(tracker: CallTracker) -> None:
    assert (len(tracker.calls), len(tracker.channels), len(tracker.bridges)) == (CALLS, 3 * CALLS, CALLS)
    assert all(len(b.channels) == 3 for b in tracker.bridges.values())


def test_records_are_slotted_without_a_dict(tracker: CallTracker) -> None:
    records = [*tracker.channels.values(), *tracker.calls.values(), *tracker.bridges.values()]
    records += [c for q in tracker.queues.values() for c in q.callers.values()] + list(tracker.queues.values())
    assert {type(r) for r in records} >= {Channel, Call, Bridge, Queue}
    for record in records:
        assert not hasattr(record, "__dict__"), type(record).__name__


def test_variables_only_where_a_kept_one_was_set(tracker: CallTracker) -> None:
    """Only the callers got CB_HOTLINE / QUEUE_PRIO (SIPCALLID, DIALSTATUS, BRIDGEPEER are not kept): every
    other channel shares the one empty mapping; a caller's is a flat tuple, not a dict."""
    for ch in tracker.channels.values():
        if ch.role == "caller":
            assert type(ch.variables) is Variables and not isinstance(ch.variables, dict)
            assert dict(ch.variables) == {"CB_HOTLINE": ch.exten, "QUEUE_PRIO": "0"}
            assert ch.variables.flat == ("CB_HOTLINE", ch.exten, "QUEUE_PRIO", "0")
        else:
            assert ch.variables is NO_VARIABLES
    assert NO_VARIABLES.get("CB_HOTLINE", "") == "" and "CB_HOTLINE" not in NO_VARIABLES


def test_variables_read_like_a_dict_and_change_by_copy() -> None:
    v = NO_VARIABLES.with_value("CB_HOTLINE", "12345").with_value("CB_AGENT", "agent1001")
    v2 = v.with_value("CB_HOTLINE", "110")
    assert dict(v) == {"CB_HOTLINE": "12345", "CB_AGENT": "agent1001"} and v["CB_AGENT"] == "agent1001"
    assert dict(v2) == {"CB_HOTLINE": "110", "CB_AGENT": "agent1001"} and len(v2) == 2
    assert v == {"CB_HOTLINE": "12345", "CB_AGENT": "agent1001"} and NO_VARIABLES == {}
    with pytest.raises(KeyError):
        v["CB_TICKET"]


def test_no_empty_sets_kept_per_channel(tracker: CallTracker) -> None:
    """Dialling and pressed keys start as the shared empty frozenset and return to it once empty (DialEnd):
    an empty set is 216 bytes, and three per channel were a third of a channel's memory."""
    for ch in tracker.channels.values():
        assert ch.dialing is NOTHING and ch.dtmf_down is NOTHING
    for call in tracker.calls.values():
        assert call.transfers_seen is NOTHING and call.transfers is NO_TRANSFERS
    with pytest.raises(TypeError):
        NO_TRANSFERS.append(Transfer("blind", "", "", "", "", 0.0, 0))
    ch = Channel("u1", "PJSIP/a-1", "u1")
    ch.dial("u2")
    assert ch.dialing == {"u2"} and frozenset() == NOTHING
    ch.dialled("u2")
    assert ch.dialing is NOTHING
    ch.key_down("5")
    assert ch.key_up("5") and not ch.key_up("5") and ch.dtmf_down is NOTHING


def test_channel_lists_of_calls_and_bridges_are_lists(tracker: CallTracker) -> None:
    for holder in [*tracker.calls.values(), *tracker.bridges.values()]:
        assert type(holder.channels) is Uids and isinstance(holder.channels, list)
    uids = Uids()
    uids.add("a")
    uids.add("b")
    uids.add("a")
    uids.discard("c")
    uids.discard("a")
    assert uids == ["b"]


def test_no_snapshot_is_kept_beside_the_channels(tracker: CallTracker) -> None:
    """Neither a uniqueid-keyed dict of snapshots nor a snapshot per channel: whether one may be skipped is
    decided against the channel's own fields (``TrackerState.touch``), and every channel but an unresolved
    caller is settled once a snapshot was applied."""
    assert not hasattr(tracker.state, "applied") and "applied" not in Channel.__slots__
    channels = tracker.channels.values()
    assert all(not isinstance(getattr(ch, slot), tuple) for ch in channels for slot in Channel.__slots__)
    assert all(ch.settled for ch in channels if ch.role != "caller")


def test_queue_index_shares_one_tuple_per_queue(tracker: CallTracker) -> None:
    by_queue: dict[tuple[str, ...], set[int]] = {}
    for value in tracker.state.queues_of.values():
        by_queue.setdefault(value, set()).add(id(value))
    assert by_queue and all(len(ids) == 1 for ids in by_queue.values())


def test_the_normalised_number_is_the_callers_own_string(tracker: CallTracker) -> None:
    for call in tracker.calls.values():
        caller = tracker.channels[call.call_id]
        assert call.caller_num == caller.caller_num and call.caller_num is call.raw_caller_num


# --- waiting positions: Queue.top skips the scan of a leave, and changes no position -------------------------


def _snapshot(uid: str) -> dict[str, str]:
    return {"Channel": f"PJSIP/trunk-{uid}", "ChannelState": "6", "ChannelStateDesc": "Up",
            "CallerIDNum": "13800000000", "CallerIDName": "", "ConnectedLineNum": "", "ConnectedLineName": "",
            "Context": "cb-inbound", "Exten": "12345", "Priority": "3", "Uniqueid": uid, "Linkedid": uid}  # fmt: skip


def _eager_remove(queue: Queue, uid: str) -> QueueCaller | None:
    """The reference: every caller behind the one leaving moves up, looked at on every leave."""
    gone = queue.callers.pop(uid, None)
    if gone is not None:
        for other in queue.callers.values():
            if other.position > gone.position:
                other.position -= 1
    return gone


@pytest.mark.parametrize("seed", range(8))
def test_positions_after_random_joins_entries_and_leaves_match_the_eager_way(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    events, waiting, n = [], [], 0
    for _ in range(400):
        roll = rng.random()
        if roll < 0.45 or not waiting:
            uid = f"1795917000.{n}"
            n += 1
            waiting.append(uid)
            # Asterisk's positions, and odd ones: at the end, in front (priority), the same as another
            position = rng.choice([len(waiting), 1, rng.randint(1, len(waiting) + 2)])
            events.append(decode_headers("QueueCallerJoin", {**_snapshot(uid), "Queue": "q-12345",
                                                             "Position": str(position), "Count": str(len(waiting))}))
        elif roll < 0.55:
            uid = rng.choice(waiting)
            events.append(decode_headers("QueueEntry", {"Queue": "q-12345", "Position": str(rng.randint(1, 9)),
                                                        "Channel": f"PJSIP/trunk-{uid}", "Uniqueid": uid,
                                                        "CallerIDNum": "13800000000", "Wait": "3", "Priority": "0"}))
        else:
            uid = waiting.pop(rng.randrange(len(waiting)) if rng.random() < 0.5 else 0)  # mostly the front
            events.append(decode_headers("QueueCallerLeave", {**_snapshot(uid), "Queue": "q-12345",
                                                              "Position": "1", "Count": str(len(waiting))}))
    def replay() -> list[list[tuple[str, int]]]:
        t = CallTracker()
        seen = []
        for i, ev in enumerate(events):
            t.feed(ev, now=float(i))
            seen.append([(c.uniqueid, c.position) for c in t.queues["q-12345"].ordered_callers()])
        queue = t.queues["q-12345"]
        assert all(c.position <= queue.top for c in queue.callers.values()), "top stays a bound"
        return seen

    fast = replay()
    with monkeypatch.context() as mp:
        mp.setattr(rooms, "remove_caller", _eager_remove)
        eager = replay()
    assert fast == eager and len(fast[-1]) == len(waiting)
    assert len({p for step in fast for _, p in step}) > 5, "positions really moved"
