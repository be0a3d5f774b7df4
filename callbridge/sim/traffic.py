"""Deterministic call traffic: Poisson arrivals per hotline, holding times, emergencies, nuisance
callers and surges — from a few calls to tens of thousands, all on the simulator's one scheduler.

Every arrival and every caller hang-up is a timer entry (no task per call), and the random stream
comes from one seeded ``random.Random``: the same seed gives the same calls at the same times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callbridge.sim.clock import Timer
from callbridge.sim.config import HotlineTraffic, TrafficConfig

if TYPE_CHECKING:
    from callbridge.sim.simulator import Simulator


@dataclass(slots=True)
class TrafficStats:
    offered: int = 0
    emergency: int = 0
    nuisance: int = 0
    per_did: dict[str, int] = field(default_factory=dict)


class TrafficGenerator:
    def __init__(self, sim: Simulator, config: TrafficConfig) -> None:
        self.sim = sim
        self.config = config
        self.rng = random.Random(config.seed)
        self.surge = config.surge_factor
        self.stats = TrafficStats()
        self._timers: list[Timer] = []
        self._running = False
        self._caller_seq = 0

    def start(self) -> None:
        self._running = True
        for hotline in self.config.hotlines:
            self._schedule(hotline)

    def stop(self) -> None:
        self._running = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def set_surge(self, factor: float) -> None:
        """Multiply every hotline's arrival rate (1.0 = normal); applies from the next arrival."""
        self.surge = max(0.0, factor)

    def _schedule(self, hotline: HotlineTraffic) -> None:
        rate = hotline.calls_per_minute / 60.0 * self.surge
        if not self._running or rate <= 0:
            return
        gap = self.rng.expovariate(rate)
        self._timers.append(self.sim.sched.call_later(gap, lambda: self._arrive(hotline)))
        if len(self._timers) > 64:
            self._timers = [t for t in self._timers if not t.cancelled]

    def _caller(self) -> tuple[str, bool]:
        cfg = self.config
        if cfg.nuisance_numbers and self.rng.random() < cfg.nuisance_share:
            return self.rng.choice(cfg.nuisance_numbers), True
        self._caller_seq += 1
        return f"139{self.rng.randrange(10**8):08d}", False

    def _arrive(self, hotline: HotlineTraffic) -> None:
        if not self._running:
            return
        self.place(hotline)
        self._schedule(hotline)

    def place(self, hotline: HotlineTraffic) -> str:
        """Place one call of this hotline's profile now; returns the channel name."""
        number, nuisance = self._caller()
        emergency = self.rng.random() < hotline.emergency_share
        holding = self.rng.expovariate(1.0 / hotline.mean_holding) if hotline.mean_holding > 0 else None
        if hotline.abandon_after is not None:
            holding = min(holding or hotline.abandon_after, hotline.abandon_after)
        variables = {"CB_CATEGORY": "emergency"} if emergency else {}
        chan = self.sim.place_call(number, hotline.did, hangup_after=holding, variables=variables)
        stats = self.stats
        stats.offered += 1
        stats.emergency += emergency
        stats.nuisance += nuisance
        stats.per_did[hotline.did] = stats.per_did.get(hotline.did, 0) + 1
        return chan.name

    def burst(self, count: int, did: str, *, holding: float | None = None) -> list[str]:
        """``count`` calls to ``did`` at once (surge tests, the 10,000-call benchmark)."""
        profile = HotlineTraffic(did=did, mean_holding=holding or 0.0)
        return [self.place(profile) for _ in range(count)]
