"""The retained queue and hotline states (and the wallboard's free agents) as a pure projection of the
tracker's queues over the dialplan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callbridge.calls.model import Queue, QueueCaller, QueueMemberState
from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.plan import Dialplan
from callbridge.queue_projection import hotline_states, queue_states

REPO = Path(__file__).resolve().parent.parent
NOT_INUSE, INUSE = 1, 2  # Asterisk device states


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Dialplan:
    """The repository's dialplans, with 110's agents in two queues (q-110 and q-110-expert)."""
    folder = tmp_path_factory.mktemp("plans")
    shutil.copytree(REPO / "dialplans", folder, dirs_exist_ok=True)
    f = folder / "110.yaml"
    text = f.read_text(encoding="utf-8")
    assert "agent_queues: [q-110]" in text
    f.write_text(text.replace("agent_queues: [q-110]", "agent_queues: [q-110, q-110-expert]"), encoding="utf-8")
    return load_dialplan(folder)


def caller(uid: str, position: int, joined: float) -> QueueCaller:
    return QueueCaller(uniqueid=uid, channel=f"PJSIP/c-{uid}", caller_num="13800000000", position=position,
                       joined=joined)  # fmt: skip


def member(name: str, status: int, *, paused: bool = False) -> QueueMemberState:
    return QueueMemberState(interface=name, name=name, status=status, paused=paused)


def queues() -> dict[str, Queue]:
    q110 = Queue("q-110", callers={"a": caller("a", 1, 970.0), "b": caller("b", 2, 995.55)},
                 members={m.interface: m for m in (member("Local/2101@sim", NOT_INUSE),
                                                   member("Local/2102@sim", INUSE))})  # fmt: skip
    expert = Queue("q-110-expert", callers={"c": caller("c", 1, 958.04)},
                   members={m.interface: m for m in (member("Local/2191@sim", NOT_INUSE),
                                                     member("Local/2192@sim", NOT_INUSE, paused=True))})  # fmt: skip
    stray = Queue("q-not-in-the-plan", callers={"z": caller("z", 1, 0.0)})
    return {q.name: q for q in (q110, expert, stray)}


def test_each_queue_of_the_plan_with_waiting_longest_wait_free_and_busy_agents(plan: Dialplan) -> None:
    states = queue_states(plan, queues(), now=1000.0)
    assert list(states) == list(plan.queues)  # the plan's queues, in its order; others are not shown
    q110 = states["q-110"]
    assert (q110.queue, q110.hotline, q110.waiting, q110.longest_wait_s) == ("q-110", "110", 2, 30.0)
    assert (q110.agents_free, q110.agents_busy, q110.ts) == (1, 1, 1000.0)
    expert = states["q-110-expert"]
    assert (expert.waiting, expert.longest_wait_s) == (1, 42.0)  # 41.96 s, to a tenth
    assert (expert.agents_free, expert.agents_busy) == (1, 1)  # a paused agent is not free
    # a queue the PBX has not reported: nobody waits, no agents
    q119 = states["q-119"]
    assert (q119.hotline, q119.waiting, q119.longest_wait_s, q119.agents_free, q119.agents_busy) == ("119", 0, 0, 0, 0)
    assert states["q-12345-remote"].hotline is None  # remote seats belong to no hotline


def test_a_hotline_sums_its_agent_queues_and_shows_the_longest_wait(plan: Dialplan) -> None:
    per_queue = queue_states(plan, queues(), now=1000.0)
    hotlines = hotline_states(plan, per_queue, now=1000.0)
    h110 = hotlines["110"]
    assert (h110.waiting, h110.longest_wait_s, h110.agents_free, h110.agents_busy, h110.ts) == (3, 42.0, 2, 2, 1000.0)
    assert hotlines["119"].waiting == 0 and hotlines["119"].agents_free == 0
    # utility lines with no agent queue of their own have no state
    no_queue = {h.number for h in plan.hotlines.values() if not h.agent_queues}
    assert no_queue and not no_queue & set(hotlines)
    assert set(hotlines) == {h.number for h in plan.hotlines.values() if h.agent_queues}


def test_a_queue_left_out_of_the_view_is_left_out_of_its_hotline(plan: Dialplan) -> None:
    per_queue = queue_states(plan, queues(), now=1000.0)
    del per_queue["q-110-expert"]
    h110 = hotline_states(plan, per_queue, now=1000.0)["110"]
    assert (h110.waiting, h110.longest_wait_s, h110.agents_free) == (2, 30.0, 1)
