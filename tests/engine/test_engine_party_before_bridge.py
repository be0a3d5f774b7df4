"""The agent call.answered names may transfer at once, before Asterisk's BridgeEnter is read (issue 15's live
race): the party check accepts the leg the caller's Dial or Queue answered, and the hops behind it, while the
caller is not bridged yet, and still refuses the agent whose hop lost the race.

Real recording: ``tests/fixtures/asterisk-22-live/live_q120_local_hops_the_first_inner_answer_loses`` (q-120
rings Local/2301@sim and Local/2302@sim, both agents answer, the queue connects Local/2301).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.ami import event_types as ami
from callbridge.calls import events as ce
from callbridge.calls.tracker import CallTracker
from callbridge.dialplan import load_dialplan
from callbridge.engine.authz import authorise
from callbridge.engine.core import hotline_of
from callbridge.errors import CommandError
from callbridge.testing.replay import events_from_raw, replay_events

REPO = Path(__file__).resolve().parents[2]
RACE = REPO / "tests" / "fixtures" / "asterisk-22-live" / "live_q120_local_hops_the_first_inner_answer_loses.rx.raw"
PLAN = load_dialplan(REPO / "dialplans")


def _until_answered() -> tuple[CallTracker, str, str]:
    """The tracker right after call.answered (the queue's DialEnd ANSWER), before any caller BridgeEnter."""
    events = list(events_from_raw(RACE.read_bytes()))
    tracker = CallTracker(hotline_of=hotline_of(lambda: PLAN))
    for i, event in enumerate(events):
        derived, _ = replay_events([event], tracker)
        answered = [e for e in derived if isinstance(e, ce.CallAnswered)]
        if answered:
            later = events[i + 1 :]
            caller_bridged = next(j for j, e in enumerate(later) if isinstance(e, ami.BridgeEnter)
                                  and e.snap.channel.startswith("PJSIP/carrier-"))  # fmt: skip
            assert caller_bridged > 0, "the recording has the caller's BridgeEnter after call.answered"
            return tracker, answered[0].call_id, answered[0].agent
    raise AssertionError("no call.answered")


def test_the_announced_agent_may_transfer_before_the_bridge_is_read() -> None:
    tracker, call_id, agent = _until_answered()
    assert agent == "agent2301"
    assert not tracker.bridge_peers(tracker.calls[call_id].caller_channel), "not bridged yet"
    grant = authorise(tracker, PLAN, "normal", call_id=call_id, agent=agent, to_hotline="119", category="fire")
    assert grant.agent_channel.startswith("PJSIP/agent2301-") and grant.from_hotline == "120"


def test_the_agent_whose_hop_lost_is_not_a_party() -> None:
    tracker, call_id, _ = _until_answered()
    with pytest.raises(CommandError) as refused:
        authorise(tracker, PLAN, "normal", call_id=call_id, agent="agent2302", to_hotline="119", category="fire")
    assert refused.value.code == "not_a_party"
