"""The caller number follows the PBX, in one normal form (issue 16, point 6)."""

from __future__ import annotations

import pytest

from callbridge.ami.decode import decode_headers
from callbridge.calls import events as ce
from callbridge.calls.numbers import CHINA, NumberPlan
from callbridge.calls.tracker import CallTracker
from callbridge.testing.replay import events_from_raw, replay_events
from tests.calls.traces import case_path, replay_case


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("013800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("+861012345678", "01012345678"),
        ("0086 755 1234 5678", "075512345678"),
        ("01012345678", "01012345678"),
        ("+14155550100", "0014155550100"),
        ("1001", "1001"),
        ("12345", "12345"),
        ("", ""),
        ("anonymous", "anonymous"),
    ],
)  # fmt: skip
def test_numbers_are_normalised_by_the_numbering_plan(raw: str, normal: str) -> None:
    assert CHINA.normalise(raw) == normal


def test_another_numbering_plan() -> None:
    germany = NumberPlan(country_code="49", mobile_lead="15", mobile_length=11)
    assert germany.normalise("+4930123456") == "030123456" and germany.normalise("+8613800138000") == "008613800138000"


def test_the_call_follows_the_dialplan_rewrite() -> None:
    derived, _ = replay_case("callerid_rewrite")
    offered = next(e for e in derived if isinstance(e, ce.CallOffered))
    assert offered.caller_num == "13800138000", "+86 is the same number as the national form"
    (changed,) = [e for e in derived if isinstance(e, ce.CallerChanged)]
    assert (changed.previous_num, changed.caller_num, changed.raw_num) == ("13800138000", "13900139000",
                                                                           "013900139000")  # fmt: skip
    after = derived[derived.index(changed) + 1 :]
    assert {e.data()["caller_num"] for e in after if "caller_num" in e.data()} == {"13900139000"}


def test_without_a_numbering_plan_numbers_are_kept_as_the_pbx_writes_them() -> None:
    events = list(events_from_raw(case_path("callerid_rewrite").read_bytes()))
    derived, _ = replay_events(events, CallTracker(numbers=None))
    offered = next(e for e in derived if isinstance(e, ce.CallOffered))
    changed = [e.data()["caller_num"] for e in derived if isinstance(e, ce.CallerChanged)]
    assert offered.caller_num == "+8613800138000" and changed == ["13800138000", "013900139000"]


def test_queue_events_carry_the_normalised_caller_number() -> None:
    caller = {"Channel": "PJSIP/trunk-in-00000001", "ChannelState": "6", "ChannelStateDesc": "Up",
              "CallerIDNum": "+8613800138000", "CallerIDName": "x", "Context": "from-trunk", "Exten": "12345",
              "Uniqueid": "u1", "Linkedid": "u1"}  # fmt: skip
    queue = {"Queue": "support", "Position": "1", "Count": "1"}
    events = [decode_headers("Newchannel", caller), decode_headers("QueueCallerJoin", {**caller, **queue}),
              decode_headers("QueueCallerAbandon", {**caller, **queue, "OriginalPosition": "1", "HoldTime": "3"}),
              decode_headers("QueueCallerLeave", {**caller, **queue, "Count": "0"})]  # fmt: skip
    derived, _ = replay_events(events)
    nums = {e.TYPE: e.data()["caller_num"] for e in derived if e.TYPE.startswith(("queue.", "call.queued"))}
    assert nums == {"call.queued": "13800138000", "queue.joined": "13800138000", "queue.abandoned": "13800138000",
                    "queue.left": "13800138000"}  # fmt: skip
