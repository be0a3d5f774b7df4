"""A realistic morning of a city's hotlines as the tracker and engine would report it.

08:00–09:00 (+08:00): 12345 gets 12 calls (8 answered, 2 abandoned, 2 still waiting), 110 gets 5
(3 answered, 2 abandoned) and 1 transferred in (answered), 120 gets 2 direct calls and 1 transferred in
(the receiving PBX gives it its own call id: one offer, not two), 119 gets 1 transferred in that rings and
is not answered. Transfers: 12345→110 completed with a three-way hand-over and the number verified;
12345→120 completed over the backup line with the number *not* carried; 12345→119 failed and returned
to the agent; 110→122 refused (it never rang at 122: not offered there). 110 overflows 08:10–08:25; 12345
overflows from 08:50 on. 110 flags two nuisance numbers (one twice). The EXPECTED numbers below are worked
out by hand from this story (an abandoned call's wait runs to its end, 0.2 s after it left the queue).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from callbridge.store.projection import EventRecord

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=TZ).timestamp()
PERIOD = "2026-11-29T08:00:00+08:00..2026-11-29T09:00:00+08:00"


def at(minutes: float) -> float:
    return T0 + minutes * 60


class Story:
    def __init__(self) -> None:
        self.events: list[EventRecord] = []

    def ev(self, type_: str, ts: float, call_id: str | None = None, hotline: str | None = None, **data: Any) -> None:
        self.events.append(EventRecord(type_, ts, call_id, hotline, data))

    def call(
        self,
        call_id: str,
        hotline: str,
        caller: str,
        start: float,
        *,
        wait: float,
        outcome: str,
        agent: str = "",
        talk: float = 120.0,
        transfer_id: str | None = None,
    ) -> None:
        """A call offered at ``start``, queued, then answered / abandoned after ``wait`` s, or still waiting."""
        extra = {"transfer_id": transfer_id} if transfer_id else {}
        queue = f"q-{hotline}"
        self.ev("call.offered", start, call_id, hotline, caller_num=caller, channel=f"PJSIP/trunk-{call_id}", **extra)
        self.ev("queue.joined", start + 0.5, call_id, hotline, queue=queue, position=1)
        if outcome == "answered":
            self.ev("queue.left", start + wait, call_id, hotline, queue=queue)
            self.ev("call.answered", start + wait, call_id, hotline, agent=agent, agent_channel=f"PJSIP/{agent}-1")
            self.ev("call.ended", start + wait + talk, call_id, hotline, cause="normal_clearing")
        elif outcome == "abandoned":
            self.ev("queue.abandoned", start + wait, call_id, hotline, queue=queue)
            self.ev("call.ended", start + wait + 0.2, call_id, hotline, cause="caller_hangup")

    def sorted(self) -> list[EventRecord]:
        return sorted(self.events, key=lambda e: e.ts)


def morning() -> list[EventRecord]:
    s = Story()
    for i, agent in enumerate(("a1", "a2", "a3")):
        s.ev("queue.member_changed", at(0), None, "12345", queue="q-12345", agent=agent, status=1 if i else 2)
    for i, agent in enumerate(("p1", "p2")):
        s.ev("queue.member_changed", at(0), None, "110", queue="q-110", agent=agent, status=1 if i else 2)
    # 12345: eight answered (waits 5..40), two abandoned (50, 70), two still waiting at 09:00.
    for i, wait in enumerate((5, 10, 15, 20, 25, 30, 35, 40), start=1):
        s.call(f"c{i}", "12345", f"1380000000{i}", at(i * 4), wait=wait, outcome="answered", agent="a1")
    s.call("c9", "12345", "13800000009", at(40), wait=50, outcome="abandoned")
    s.call("c10", "12345", "13800000010", at(44), wait=70, outcome="abandoned")
    s.call("c11", "12345", "13800000011", at(58), wait=0, outcome="waiting")
    s.call("c12", "12345", "13800000012", at(59), wait=0, outcome="waiting")
    # 110: three answered (2, 4, 6), two abandoned (30, 60).
    for i, wait in enumerate((2, 4, 6), start=1):
        s.call(f"p{i}", "110", f"1370000000{i}", at(i * 5), wait=wait, outcome="answered", agent="p1")
    s.call("p4", "110", "13700000004", at(20), wait=30, outcome="abandoned")
    s.call("p5", "110", "13700000005", at(25), wait=60, outcome="abandoned")
    # 120: two direct calls (3, 5) and the receiving side of X2 (4).
    s.call("m1", "120", "13600000001", at(12), wait=3, outcome="answered", agent="m7")
    s.call("m2", "120", "13600000002", at(30), wait=5, outcome="answered", agent="m7")

    # X1: c1 12345 → 110, three-way hand-over, number verified, both sides closed.
    x1 = {"transfer_id": "X1", "from_hotline": "12345", "to_hotline": "110"}
    t = at(4) + 5 + 30  # c1 answered at +5 s; agent asks for the transfer 30 s later
    s.ev("transfer.requested", t, "c1", "12345", **x1, caller_num="13800000001", agent="a1", category="theft",
         ticket="T-1", summary="bike stolen", mode="threeway")  # fmt: skip
    s.ev("command.received", t - 0.1, "c1", "12345", command="transfer", source="mqtt", agent="a1")
    s.ev("transfer.ringing", t + 1, "c1", "12345", **x1)
    s.ev("transfer.answered", t + 6, "c1", "12345", **x1, dest_agent="p2")
    s.ev("transfer.number_verified", t + 6, "c1", "12345", **x1, seen_num="13800000001")
    s.ev("threeway.started", t + 7, "c1", "12345", **x1, room="cb-conf-X1")
    s.ev("threeway.agent_left", t + 40, "c1", "12345", **x1, room="cb-conf-X1", agent="a1")
    s.ev("transfer.completed", t + 40, "c1", "12345", **x1)
    # c1's call.ended (at +125 s) closes the receiving side.

    # X2: c2 12345 → 120 over the backup line; the caller's number was not carried.
    x2 = {"transfer_id": "X2", "from_hotline": "12345", "to_hotline": "120"}
    t = at(8) + 10 + 20
    s.ev("transfer.requested", t, "c2", "12345", **x2, caller_num="13800000002", agent="a1", category="injury",
         ticket="T-2", summary="fall, conscious", mode="blind")  # fmt: skip
    s.ev("transfer.backup_line", t + 3, "c2", "12345", **x2, line="trunk-120-b", reason="primary busy")
    s.ev("transfer.ringing", t + 4, "c2", "12345", **x2)
    s.call("c2-120", "120", "13800000002", t + 4, wait=4, outcome="answered", agent="m8", transfer_id="X2")
    s.ev("transfer.answered", t + 8, "c2", "12345", **x2, dest_agent="m8")
    s.ev("transfer.number_mismatch", t + 8, "c2", "12345", **x2, seen_num="057100000000")
    s.ev("transfer.completed", t + 9, "c2", "12345", **x2)

    # X3: c3 12345 → 119 fails (no answer) and comes back to the agent.
    x3 = {"transfer_id": "X3", "from_hotline": "12345", "to_hotline": "119"}
    t = at(12) + 15 + 10
    s.ev("transfer.requested", t, "c3", "12345", **x3, caller_num="13800000003", agent="a1", mode="blind")
    s.ev("transfer.ringing", t + 1, "c3", "12345", **x3)
    s.ev("transfer.failed", t + 31, "c3", "12345", **x3, reason="no_answer")
    s.ev("transfer.returned", t + 32, "c3", "12345", **x3, reason="no_answer")

    # X4: p1 110 → 122 refused by policy.
    s.ev("transfer.requested", at(5) + 10, "p1", "110", transfer_id="X4", from_hotline="110", to_hotline="122",
         caller_num="13700000001", agent="p1", mode="blind")  # fmt: skip
    s.ev("transfer.refused", at(5) + 10.5, "p1", "110", transfer_id="X4", reason="not_permitted")

    s.ev("queue.overflow_started", at(10), None, "110", queue="q-110", target="remote-110")
    s.ev("queue.overflow_ended", at(25), None, "110", queue="q-110")
    s.ev("queue.overflow_started", at(50), None, "12345", queue="q-12345", target="remote-12345")
    for minute, number in ((14, "13900000009"), (33, "13900000009"), (41, "13900000008")):
        s.ev("nuisance.flagged", at(minute), None, "110", caller_num=number, reason="repeat_silent")
    return s.sorted()


END = at(60)

EXPECTED: dict[str, dict[str, Any]] = {
    "12345": {
        # 8 of 10 finished offers: the two calls still waiting are in progress, not lost
        # waits 5..40 answered, 50.2 and 70.2 abandoned: (180 + 120.4) / 10
        "offered": 12, "answered": 8, "abandoned": 2, "in_progress": 2, "answer_rate": 0.8, "wait_avg_s": 30.04,
        "wait_p90_s": 50.2, "transfers_out": 3, "transfers_in": 0, "transfer_success": 2 / 3, "number_verified": 0.5,
        "backup_line_uses": 1, "overflow_minutes": 10.0, "nuisance_callers": 0, "below_target": False,
    },
    "110": {
        # p1..p5 and X1 (rang at 110, answered 5 s later): waits 2, 4, 6, 30.2, 60.2, 5
        "offered": 6, "answered": 4, "abandoned": 2, "in_progress": 0, "answer_rate": 4 / 6, "wait_avg_s": 17.9,
        "wait_p90_s": 60.2, "transfers_out": 1, "transfers_in": 1, "transfer_success": 0.0, "number_verified": None,
        "backup_line_uses": 0, "overflow_minutes": 15.0, "nuisance_callers": 2, "below_target": True,
    },
    "120": {
        "offered": 3, "answered": 3, "abandoned": 0, "in_progress": 0, "answer_rate": 1.0, "wait_avg_s": 4.0,
        "wait_p90_s": 5.0, "transfers_out": 0, "transfers_in": 1, "transfer_success": None, "number_verified": None,
        "backup_line_uses": 0, "overflow_minutes": 0.0, "nuisance_callers": 0, "below_target": False,
    },
    "119": {
        # X3 rang at 119 for 30 s and failed: offered to 119, not answered there
        "offered": 1, "answered": 0, "abandoned": 1, "in_progress": 0, "answer_rate": 0.0, "wait_avg_s": 30.0,
        "wait_p90_s": 30.0, "transfers_out": 0, "transfers_in": 1, "transfer_success": None, "number_verified": None,
        "backup_line_uses": 0, "overflow_minutes": 0.0, "nuisance_callers": 0, "below_target": True,
    },
}  # fmt: skip

PAIRS = {
    ("110", "122"): {"refused": 1},
    ("12345", "110"): {"completed": 1},
    ("12345", "119"): {"returned": 1},
    ("12345", "120"): {"completed": 1},
}
