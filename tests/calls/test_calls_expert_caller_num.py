"""The expert queue's caller is the citizen, even when the transfer's connected-line update lands late.

Atxfer makes ``Local/119@cb-expert-119-…;1/;2``; the transfer thread's connected-line update on ;1 becomes a
caller-ID change of ;2 (core_unreal.c ``unreal_colp_redirect_indicate``) from that thread, not from ;2's own
dialplan thread, so under load it can land after cb-expert's ``Set(CALLERID(num)=${CB_CALLER_NUM})`` and
before ``Queue()``: ;2 then joins the queue as the sending agent ('1003'). The recorded passing session is
replayed as is, then with that late update moved where the failing live run had it.
"""

from __future__ import annotations

from pathlib import Path

from callbridge.calls import events as ce
from callbridge.testing.replay import events_from_raw, replay_events

LIVE = Path(__file__).parents[1] / "fixtures/asterisk-22-live"
TRACE = LIVE / "live_attended_transfer_completed_into_the_expert_queue.rx.raw"
LEG = b"Channel: Local/119@cb-expert-119-00000000;2\r\n"
CITIZEN, AGENT = "13800138000", "1003"


def _frames(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n")


def _late_connected_line(data: bytes) -> bytes:
    """The trace with the agent's caller ID reaching ;2 between the Set and the QueueCallerJoin."""
    frames = _frames(data)
    first = next(i for i, f in enumerate(frames) if f.startswith(b"Event: NewCallerid") and LEG in f
                 and b"CallerIDNum: 1003\r\n" in f)  # fmt: skip
    moved = frames.pop(first)
    set_at = next(i for i, f in enumerate(frames) if LEG in f and b"AppData: CALLERID(num)=13800138000" in f)
    join = next(i for i, f in enumerate(frames) if f.startswith(b"Event: QueueCallerJoin") and LEG in f)
    for i in range(set_at + 1, join + 1):  # from the Set on, ;2 carries the agent's number again
        if LEG in frames[i]:
            frames[i] = frames[i].replace(b"CallerIDNum: 13800138000\r\n", b"CallerIDNum: 1003\r\n")
    frames.insert(join, moved.replace(b"Exten: 119\r\n", b"Exten: s\r\n"))
    return b"\r\n\r\n".join(frames)


def _leg_waits(data: bytes) -> list[tuple[str, str]]:
    derived, _ = replay_events(events_from_raw(data))
    return [(e.TYPE, e.caller_num) for e in derived
            if isinstance(e, (ce.CallQueued, ce.QueueJoined, ce.QueueLeft)) and e.channel.endswith(";2")]  # fmt: skip


def test_the_recorded_session_queues_the_citizen() -> None:
    waits = _leg_waits(TRACE.read_bytes())
    assert waits and all(num == CITIZEN for _, num in waits), waits


def test_a_late_connected_line_update_does_not_queue_the_agent() -> None:
    data = _late_connected_line(TRACE.read_bytes())
    events = list(events_from_raw(data))
    join = next(e for e in events if e.event_name == "QueueCallerJoin" and e.snap.channel.endswith(";2"))
    assert join.snap.caller_num == AGENT  # the race as the failing live run had it
    waits = _leg_waits(data)
    assert {t for t, _ in waits} == {"call.queued", "queue.joined", "queue.left"}
    assert all(num == CITIZEN for _, num in waits), waits
