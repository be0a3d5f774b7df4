"""StateTopics: the retained state topics and the wallboard's free agents, read from the running app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callbridge.app_state import StateTopics
from callbridge.calls.model import Queue, QueueCaller, QueueMemberState
from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.plan import Dialplan

REPO = Path(__file__).resolve().parent.parent
PLAN = load_dialplan(REPO / "dialplans")


@dataclass
class Publisher:
    states: list[tuple[str, Any]] = field(default_factory=list)

    def set_state_nowait(self, suffix: str, state: Any) -> None:
        self.states.append((suffix, state))


@dataclass
class Board:
    free: dict[str, int] = field(default_factory=dict)

    def set_agents_free(self, hotline: str, free: int) -> None:
        self.free[hotline] = free


@dataclass
class Tracker:
    queues: dict[str, Queue]


@dataclass
class Engine:
    mode: str = "normal"


@dataclass
class Running:
    publisher: Publisher | None
    board: Board | None
    tracker: Tracker
    plan: Dialplan = PLAN
    engine: Engine = field(default_factory=Engine)


def tracker() -> Tracker:
    q = Queue("q-110", callers={"a": QueueCaller("a", "PJSIP/c-a", "13800000000", 1, joined=95.0)},
              members={"Local/2101@sim": QueueMemberState("Local/2101@sim", "2101", status=1)})  # fmt: skip
    return Tracker({"q-110": q})


def test_a_round_publishes_mode_queues_hotlines_and_gives_the_board_its_free_agents() -> None:
    now = [100.0]
    app = Running(Publisher(), Board(), tracker())
    topics = StateTopics(app, lambda: now[0])
    last: dict[str, Any] = {}
    since = topics.refresh(last, mode_since=50.0)
    published = dict(app.publisher.states)  # type: ignore[union-attr]
    assert published["mode"].mode == "normal" and published["mode"].since == 50.0 == since
    assert {f"queues/{q}" for q in PLAN.queues} | {"mode"} <= set(published)
    assert (published["queues/q-110"].waiting, published["queues/q-110"].longest_wait_s) == (1, 5.0)
    assert (published["hotlines/110"].agents_free, published["hotlines/110"].hotline) == (1, "110")
    assert app.board is not None and app.board.free["110"] == 1 and app.board.free["119"] == 0
    # the next second: nothing changed but the wait (under its 10 s step): nothing republished
    app.publisher.states.clear()  # type: ignore[union-attr]
    now[0] = 101.0
    topics.refresh(last, since)
    assert app.publisher.states == []  # type: ignore[union-attr]
    # the mode switches: it is republished with the moment of the switch
    app.engine.mode = "emergency"
    now[0] = 102.0
    assert topics.refresh(last, since) == 102.0
    assert [s for s, _ in app.publisher.states] == ["mode"]  # type: ignore[union-attr]


def test_without_a_bus_the_board_still_gets_its_free_agents() -> None:
    app = Running(None, Board(), tracker())
    StateTopics(app, lambda: 100.0).refresh({}, mode_since=0.0)
    assert app.board is not None and app.board.free["110"] == 1
