"""Traffic generator: deterministic with a seed; thousands of concurrent calls on one scheduler."""

from __future__ import annotations

import pytest

from callbridge.sim.config import HotlineTraffic, TrafficConfig, lab_config
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.sim.traffic import TrafficGenerator

pytestmark = pytest.mark.timeout(60)


async def _run(seed: int, minutes: float = 10) -> tuple[list[tuple[str, str]], TrafficGenerator]:
    sim = Simulator(lab_config(), users=[AmiUser("t", "t")], manual_clock=True)
    calls: list[tuple[str, str]] = []
    sim.subscribe(lambda e: calls.append((dict(e[2])["CallerIDNum"], dict(e[2])["Exten"]))
                  if e[0] == "Newchannel" and e[2][0][1].startswith("PJSIP/anonymous") else None)
    await sim.start()
    config = TrafficConfig(seed=seed, nuisance_numbers=["13000000666"], nuisance_share=0.2, hotlines=[
        HotlineTraffic(did="4008000300", calls_per_minute=30, mean_holding=60, emergency_share=0.1),
        HotlineTraffic(did="4008000110", calls_per_minute=10, mean_holding=30)])
    gen = TrafficGenerator(sim, config)
    gen.start()
    await sim.advance(minutes * 60)
    gen.stop()
    await sim.stop()
    assert sim.errors == []
    return calls, gen


async def test_same_seed_same_calls() -> None:
    a, gen_a = await _run(7)
    b, _ = await _run(7)
    c, _ = await _run(8)
    assert a == b and a != c
    assert 300 <= gen_a.stats.offered <= 500  # 40 calls/min for 10 min, Poisson
    assert gen_a.stats.per_did["4008000300"] > gen_a.stats.per_did["4008000110"]
    assert gen_a.stats.nuisance > 0 and gen_a.stats.emergency > 0
    assert sum(1 for num, _ in a if num == "13000000666") == gen_a.stats.nuisance


@pytest.mark.slow
async def test_ten_thousand_concurrent_calls() -> None:
    sim = Simulator(lab_config(), users=[AmiUser("t", "t")], manual_clock=True)
    await sim.start()
    gen = TrafficGenerator(sim, TrafficConfig(seed=1))
    names = gen.burst(10_000, "4008000300")  # no holding time: they wait in the queue
    await sim.advance(60)
    assert len(sim.channels()) == 10_000
    order = sim.queue_order("support")
    assert len(order) == 10_000 and order[0] == names[0] and order[-1] == names[-1]
    listed = sim.world.hangup_matching("^PJSIP/anonymous-")
    assert len(listed) == 10_000
    await sim.advance(1)
    assert sim.channels() == [] and sim.queue_order("support") == []
    await sim.stop()
    assert sim.errors == []
