"""The Local-hop answer race, on real recordings of Asterisk 22.10.1 (``tests/fixtures/asterisk-22-live``).

q-120 rings two seats behind Local hops (``Local/2301@sim``, ``Local/2302@sim``). When both agents answer in
the same millisecond, both inner ``;2`` Dials are answered (``PJSIP/agent230x answered Local/230x@sim;2``),
then the queue connects one ``;1`` (``Local/2301@sim;1 answered PJSIP/carrier``) and hangs the other hop up.
``call.answered`` must name the agent the caller is talking to, once, at that outer answer — whichever inner
answer came first. The winner is read from Asterisk's own log of the recording, not written here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.calls.model import CallState
from callbridge.calls.tracker import CallTracker
from callbridge.testing.replay import events_from_raw, replay_events, times_from_log

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk-22-live"
RACES = ["live_q120_local_hops_the_first_inner_answer_loses", "live_q120_local_hops_both_answer_one_wins"]


def _recording(stem: str) -> tuple[list[ami.AmiEvent], list[float]]:
    events = list(events_from_raw((LIVE / f"{stem}.rx.raw").read_bytes()))
    times = times_from_log((LIVE / f"{stem}.log").read_text("utf-8"))
    assert len(times) == len(events), stem
    return events, times


def _asterisk_says(stem: str, caller: str = r"PJSIP/carrier-\w+") -> tuple[list[str], str]:
    """Which seats' inner Dials were answered, in order, and which seat's ``;1`` the queue connected."""
    log = (LIVE / f"{stem}.asterisk-full.log").read_text("utf-8")
    inner = re.findall(r"PJSIP/agent(\d+)-\w+ answered Local/\d+@sim-\w+;2", log)
    (winner,) = re.findall(rf"Local/(\d+)@sim-\w+;1 answered {caller}", log)
    return inner, winner


def _outer_answer(events: list[ami.AmiEvent], seat: str) -> int:
    return next(i for i, e in enumerate(events) if isinstance(e, ami.DialEnd) and e.dial_status == "ANSWER"
                and e.dest.channel.startswith(f"Local/{seat}@sim-") and e.dest.channel.endswith(";1"))  # fmt: skip


@pytest.mark.parametrize("stem", RACES)
def test_call_answered_names_the_agent_the_queue_connected(stem: str) -> None:
    events, times = _recording(stem)
    inner, winner = _asterisk_says(stem)
    assert sorted(inner) == ["2301", "2302"], "the recording holds the race: both inner halves answered"
    derived, tracker = replay_events(events, CallTracker(), times)
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert (answered.agent, answered.queue) == (f"agent{winner}", "q-120")
    assert answered.agent_channel.startswith(f"PJSIP/agent{winner}-") and answered.agent_num == winner
    outer = _outer_answer(events, winner)
    assert answered.ts == times[outer], "announced when the caller side answered the hop, not before"
    (offered,) = [e for e in derived if isinstance(e, ce.CallOffered)]
    assert answered.wait_s == round(times[outer] - offered.ts, 3), "the wait lasts until the caller is connected"
    (ended,) = [e for e in derived if isinstance(e, ce.CallEnded)]
    assert ended.answered and not tracker.calls


def test_the_first_inner_answer_is_only_pending_until_the_outer_one() -> None:
    stem = RACES[0]
    events, times = _recording(stem)
    inner, winner = _asterisk_says(stem)
    assert inner[0] != winner, "this recording's first inner answer is the loser's"
    outer = _outer_answer(events, winner)
    derived, tracker = replay_events(events[:outer], CallTracker(), times[:outer])
    assert not [e for e in derived if isinstance(e, ce.CallAnswered)]
    (call,) = tracker.calls.values()
    assert call.state == CallState.RINGING and call.agent == "" and call.answered is None
    both = [c for c in tracker.channels.values() if c.name.startswith("PJSIP/agent") and c.answered is not None]
    assert len(both) == 2, "both inner answers are kept, pending, until one hop is answered"


def test_the_losing_hops_pending_party_is_dropped_when_the_hop_hangs_up() -> None:
    stem = RACES[0]
    events, times = _recording(stem)
    inner, winner = _asterisk_says(stem)
    loser = next(seat for seat in inner if seat != winner)
    hangup = next(i for i, e in enumerate(events) if isinstance(e, ami.Hangup)
                  and e.snap.channel.startswith(f"Local/{loser}@sim-") and e.snap.channel.endswith(";1"))  # fmt: skip
    _, tracker = replay_events(events[: hangup + 1], CallTracker(), times[: hangup + 1])
    (loser_leg,) = [c for c in tracker.channels.values() if c.name.startswith(f"PJSIP/agent{loser}-")]
    assert loser_leg.answered is None, "the loser never talked to the caller"
    (call,) = tracker.calls.values()
    assert call.state == CallState.ANSWERED and call.agent == f"agent{winner}"


def test_a_losing_phone_that_answers_after_its_hop_hung_up_is_not_announced() -> None:
    """Seen live (Asterisk's log: ``Local/2301;1 answered PJSIP/carrier``, then ``PJSIP/agent2302 answered
    Local/2302;2`` and ``Call terminated without answer``): the loser's inner DialEnd ANSWER may come after
    its ``;1`` was hung up. The recording, with that one DialEnd moved to after the loser's ``;1`` Hangup."""
    stem = RACES[1]
    events, times = _recording(stem)
    inner, winner = _asterisk_says(stem)
    loser = next(seat for seat in inner if seat != winner)
    late = next(i for i, e in enumerate(events) if isinstance(e, ami.DialEnd) and e.dial_status == "ANSWER"
                and e.dest.channel.startswith(f"PJSIP/agent{loser}-"))  # fmt: skip
    hung = next(i for i, e in enumerate(events) if isinstance(e, ami.Hangup)
                and e.snap.channel.startswith(f"Local/{loser}@sim-") and e.snap.channel.endswith(";1"))  # fmt: skip
    assert late < _outer_answer(events, winner) < hung
    order = [*range(late), *range(late + 1, hung + 1), late, *range(hung + 1, len(events))]
    derived, tracker = replay_events([events[i] for i in order], CallTracker(), [times[i] for i in order])
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert answered.agent == f"agent{winner}"
    assert not tracker.calls


def test_an_agent_connect_without_the_outer_dial_end_announces_the_winner() -> None:
    """Asterisk 12 to 22 publish the queue's DialEnd before AgentConnect; without it, AgentConnect is the
    caller side's answer (and a duplicate of the DialEnd changes nothing)."""
    stem = RACES[0]
    events, times = _recording(stem)
    _, winner = _asterisk_says(stem)
    outer = _outer_answer(events, winner)
    derived, _ = replay_events(events[:outer] + events[outer + 1 :], CallTracker(), times[:outer] + times[outer + 1 :])
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    connect = next(i for i, e in enumerate(events) if isinstance(e, ami.AgentConnect))
    assert (answered.agent, answered.ts) == (f"agent{winner}", times[connect])


def test_the_overflow_recording_has_the_race_too_and_names_the_remote_seat_connected() -> None:
    stem = "live_overflow_12345_remote_and_back"
    events, times = _recording(stem)
    log = (LIVE / f"{stem}.asterisk-full.log").read_text("utf-8")
    (caller, winner) = re.findall(r"app_queue\.c: Local/(\d+)@sim-\w+;1 answered (PJSIP/carrier-\w+)", log)[0][::-1]
    derived, _ = replay_events(events, CallTracker(), times)
    call_id = next(e.call_id for e in derived if isinstance(e, ce.CallOffered) and e.channel == caller)
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered) and e.call_id == call_id]
    assert answered.agent == f"agent{winner}" and answered.queue == "q-12345-remote"
