"""Records when the simulator receives each AMI action (wraps its action handlers; nothing else changes)."""

from __future__ import annotations

import time
from typing import Any

#: Actions that are part of callbridge's transfer (what "the first AMI action" of a transfer can be).
TRANSFER_ACTIONS = ("setvar", "redirect", "blindtransfer", "atxfer", "originate", "hangup", "bridge")


class ActionProbe:
    def __init__(self, sim: Any) -> None:
        self.times: list[float] = []
        for key in TRANSFER_ACTIONS:
            inner = sim.handlers.get(key)
            if inner is not None:
                sim.handlers[key] = self._wrap(inner)

    def _wrap(self, inner: Any) -> Any:
        def handler(sim: Any, msg: Any) -> Any:
            self.times.append(time.perf_counter())
            return inner(sim, msg)

        return handler

    def reset(self) -> None:
        self.times.clear()

    def first_after(self, t: float) -> float:
        return next((x for x in self.times if x > t), 0.0)
