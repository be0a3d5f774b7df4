"""The simulator plays the Local-hop answer race as Asterisk 22 does (recorded live:
``tests/fixtures/asterisk-22-live/live_q120_local_hops_*``), and the tracker fed by it names the agent the
queue connected.

A ``ringall`` queue of two seats behind Local hops (``Local/2301@seats`` → ``PJSIP/agent2301``); both phones
answer at the same moment. core_local queues a ``;2``'s answer to its ``;1``, so both inner Dials end
ANSWER before the queue reads either ``;1``; the queue connects one hop and cancels the other (manual clock).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callbridge.ami.decode import decode
from callbridge.ami.framing import AmiMessage
from callbridge.calls import events as ce
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.sim.config import SimConfig
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator

pytestmark = pytest.mark.timeout(30)
Seen = tuple[str, dict[str, str]]  # an event the simulator emitted: its name and headers

DIALPLAN = """
[from-trunk]
exten => 120,1,NoOp(inbound 120)
 same => n,Answer()
 same => n,Queue(q-120,tT,,,600)
 same => n,Hangup()

[seats]
exten => _23XX,1,NoOp(callbridge seat ${EXTEN})
 same => n,Dial(PJSIP/agent${EXTEN},,tT)
 same => n,Hangup()
"""


@contextlib.asynccontextmanager
async def _sim(tmp_path: Path, answers: dict[str, float]) -> AsyncIterator[Simulator]:
    (tmp_path / "extensions.conf").write_text(DIALPLAN, encoding="utf-8")
    config = SimConfig.model_validate({
        "dialplan": str(tmp_path / "extensions.conf"), "carrier": "carrier", "inbound_context": "from-trunk",
        "agents": [{"name": f"agent{n}", "number": n, "context": "from-agents", "answer_after": after}
                   for n, after in answers.items()],
        "queues": [{"name": "q-120", "strategy": "ringall", "timeout": 15,
                    "members": ["Local/2301@seats", "Local/2302@seats"]}],
    })  # fmt: skip
    simulator = Simulator(config, users=[AmiUser("t", "t")], manual_clock=True)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()
    assert simulator.errors == []


async def _call(tmp_path: Path, answers: dict[str, float]) -> tuple[list[Seen], list[DomainEvent]]:
    """One call to 120 until everyone hung up: the simulator's events and what the tracker derived."""
    tracker = CallTracker()
    events: list[Seen] = []
    derived: list[DomainEvent] = []
    async with _sim(tmp_path, answers) as sim:

        def feed(event: tuple[str, str, list[tuple[str, str]]]) -> None:
            name, privilege, headers = event
            events.append((name, dict(headers)))
            message = AmiMessage((("Event", name), ("Privilege", privilege), *headers))
            derived.extend(tracker.feed(decode(message), now=sim.sched.now))

        sim.subscribe(feed)
        caller = sim.place_call("13800138000", "120")
        await sim.advance(5)
        sim.hangup(caller.name)
        await sim.advance(2)
    assert not tracker.calls, "every channel hung up"
    return events, derived


def _dial_ends(events: list[Seen]) -> list[tuple[str, str, str]]:
    return [(h.get("Channel", ""), h["DestChannel"], h["DialStatus"]) for name, h in events if name == "DialEnd"]


async def test_both_inner_halves_answer_before_the_queue_connects_one(tmp_path: Path) -> None:
    events, derived = await _call(tmp_path, {"2301": 1.0, "2302": 1.0})
    ends = _dial_ends(events)
    inner = [(src, dest) for src, dest, status in ends if src.startswith("Local/") and status == "ANSWER"]
    outer = [(dest, status) for src, dest, status in ends if src.startswith("PJSIP/carrier-")]
    assert len(inner) == 2, f"both ;2 Dials answered: {ends}"
    first_outer = next(i for i, (src, _d, _s) in enumerate(ends) if src.startswith("PJSIP/carrier-"))
    assert all(ends.index((s, d, "ANSWER")) < first_outer for s, d in inner), "inner answers come first"
    (won,) = [dest for dest, status in outer if status == "ANSWER"]
    assert {status for dest, status in outer if dest != won} == {"CANCEL"}, outer
    connect = next(h for name, h in events if name == "AgentConnect")
    assert connect["DestChannel"] == won
    seat = won.removeprefix("Local/")[:4]
    lost = next(dest for dest, _s in outer if dest != won)
    assert any(name == "Hangup" and h["Channel"] == lost for name, h in events), "the losing hop is hung up"
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert (answered.agent, answered.queue) == (f"agent{seat}", "q-120")
    (ended,) = [e for e in derived if isinstance(e, ce.CallEnded)]
    assert ended.answered


async def test_a_later_answer_is_no_race_and_the_first_agent_gets_the_call(tmp_path: Path) -> None:
    events, derived = await _call(tmp_path, {"2301": 1.5, "2302": 1.0})
    inner = [d for s, d, status in _dial_ends(events) if s.startswith("Local/") and status == "ANSWER"]
    assert [d.split("-")[0] for d in inner] == ["PJSIP/agent2302"]
    (answered,) = [e for e in derived if isinstance(e, ce.CallAnswered)]
    assert answered.agent == "agent2302"
