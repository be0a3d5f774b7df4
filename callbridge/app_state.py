"""The daemon's retained state topics (mode, per queue, per hotline) and the wallboard's free agents.

Read from the running app (its plan, tracker, engine, publisher and board, all public), republished only
when they change: a subscriber joining late reads the latest from the retained topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

log = structlog.get_logger("callbridge.app")


class _Running(Protocol):
    """What the state topics read from :class:`callbridge.app.App`."""

    publisher: Any
    board: Any
    plan: Any
    tracker: Any
    engine: Any


class StateTopics:
    def __init__(self, app: _Running, clock: Callable[[], float]) -> None:
        self._app = app
        self._clock = clock

    async def run(self) -> None:
        """Retained state topics (mode, per queue and per hotline), republished only when they change."""
        last: dict[str, Any] = {}
        mode_since = self._clock()
        while True:
            try:
                mode_since = self._round(last, mode_since)
            except Exception:  # state topics are a convenience: never let them stop the daemon
                log.exception("state.publish_failed")
            await asyncio.sleep(1.0)

    def _round(self, last: dict[str, Any], mode_since: float) -> float:
        from callbridge.bus.state import HotlineState, ModeState, QueueState
        from callbridge.engine.queues import queue_stats

        now = self._clock()
        if self._app.publisher is None:
            self._board_agents(now)
            return mode_since
        if last.get("mode") != self._app.engine.mode:
            mode_since = now if "mode" in last else mode_since
            self._app.publisher.set_state_nowait("mode", ModeState(mode=self._app.engine.mode, since=mode_since))
            last["mode"] = self._app.engine.mode
        per_queue: dict[str, tuple[int, float, int, int]] = {}
        for name in self._app.plan.queues:
            s = queue_stats(self._app.tracker.queues.get(name), now)
            members = len(self._app.tracker.queues[name].members) if name in self._app.tracker.queues else 0
            per_queue[name] = (s.waiting, s.longest_wait_s, s.free_agents, max(members - s.free_agents, 0))
        for name, (waiting, longest, free, busy) in per_queue.items():
            owner = self._app.plan.hotline_of_queue(name)
            self._if_changed(last, f"queues/{name}", QueueState(
                queue=name, hotline=owner.number if owner else None, waiting=waiting,
                longest_wait_s=round(longest, 1), agents_free=free, agents_busy=busy, ts=now))  # fmt: skip
        for h in self._app.plan.hotlines.values():
            rows = [per_queue[q] for q in h.agent_queues if q in per_queue]
            if rows:
                self._if_changed(last, f"hotlines/{h.number}", HotlineState(
                    hotline=h.number, waiting=sum(r[0] for r in rows),
                    longest_wait_s=round(max(r[1] for r in rows), 1), agents_free=sum(r[2] for r in rows),
                    agents_busy=sum(r[3] for r in rows), ts=now))  # fmt: skip
        self._board_agents(now, per_queue)
        return mode_since

    def _board_agents(self, now: float, per_queue: dict[str, tuple[int, float, int, int]] | None = None) -> None:
        """Give the wallboard the free agents per hotline: no call event carries them, the tracker knows."""
        if self._app.board is None:
            return
        if per_queue is None:
            from callbridge.engine.queues import queue_stats

            per_queue = {}
            for name in self._app.plan.queues:
                s = queue_stats(self._app.tracker.queues.get(name), now)
                per_queue[name] = (s.waiting, s.longest_wait_s, s.free_agents, 0)
        for h in self._app.plan.hotlines.values():
            rows = [per_queue[q] for q in h.agent_queues if q in per_queue]
            if rows:
                self._app.board.set_agents_free(h.number, sum(r[2] for r in rows))

    def _if_changed(self, last: dict[str, Any], suffix: str, state: Any) -> None:
        # the wait grows every second; republish it in 10 s steps, everything else on change
        key = state.model_copy(update={"ts": 0.0, "longest_wait_s": int(state.longest_wait_s) // 10})
        if last.get(suffix) != key:
            last[suffix] = key
            self._app.publisher.set_state_nowait(suffix, state)
