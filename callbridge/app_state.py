"""The daemon's retained state topics (mode, per queue, per hotline) and the wallboard's free agents.

Read from the running app (its plan, tracker, engine, publisher and board, all public) through the pure
projection of :mod:`callbridge.queue_projection`, republished only when they change: a subscriber joining
late reads the latest from the retained topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from callbridge.bus.state import HotlineState, ModeState, QueueState
from callbridge.queue_projection import hotline_states, queue_states

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
                mode_since = self.refresh(last, mode_since)
            except Exception:  # state topics are a convenience: never let them stop the daemon
                log.exception("state.publish_failed")
            await asyncio.sleep(1.0)

    def refresh(self, last: dict[str, Any], mode_since: float) -> float:
        """One round: publish what changed since ``last`` (updated); return when the current mode began."""
        now = self._clock()
        app = self._app
        queues = queue_states(app.plan, app.tracker.queues, now)
        hotlines = hotline_states(app.plan, queues, now)
        if app.board is not None:  # the wallboard's free agents: no call event carries them, the tracker knows
            for state in hotlines.values():
                app.board.set_agents_free(state.hotline, state.agents_free)
        if app.publisher is None:
            return mode_since
        if last.get("mode") != app.engine.mode:
            mode_since = now if "mode" in last else mode_since
            app.publisher.set_state_nowait("mode", ModeState(mode=app.engine.mode, since=mode_since))
            last["mode"] = app.engine.mode
        for name, queue in queues.items():
            self._if_changed(last, f"queues/{name}", queue)
        for number, hotline in hotlines.items():
            self._if_changed(last, f"hotlines/{number}", hotline)
        return mode_since

    def _if_changed(self, last: dict[str, Any], suffix: str, state: QueueState | HotlineState) -> None:
        # the wait grows every second; republish it in 10 s steps, everything else on change
        key = state.model_copy(update={"ts": 0.0, "longest_wait_s": int(state.longest_wait_s) // 10})
        if last.get(suffix) != key:
            last[suffix] = key
            self._app.publisher.set_state_nowait(suffix, state)
