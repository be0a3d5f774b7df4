"""Benchmark 3 — one-key transfer latency under load (1,000 and 5,000 concurrent calls).

The simulator (own process, the example dialplans rendered) holds N callers (N-3 waiting in the 12345
queue, 3 talking to its agents) plus background traffic on every hotline. callbridge is the real
``App`` (AMI client, tracker, engine; bus off). Repeatedly, an agent in a call presses ``*1`` (rule
r-12345-110-police: a blind, number-carrying transfer to 110). At 5,000 calls the run is 3 rounds (a fresh
simulator and daemon each) of 350 presses, pooled: >= 1,000 samples per run, with p50 / p99 / p99.9 / max
of each round and of the pool (issue 19.4 asks 3 such runs). Timed twice:

callbridge-internal (the target's figure), in this process with ``InternalProbe`` shims around the real
``AmiProtocol``: the ``data_received`` that delivered the last digit's DTMFEnd → the first transfer
action handed to the transport.

Inside the simulator process, with its clock:

* DTMFEnd of the last digit written → the first transfer action callbridge sends received;
* the same DTMFEnd → the caller's new 110 trunk leg entering a bridge (transfer complete; includes the
  simulated trunk's 50 ms answer delay).

Both include two loopback hops and the simulator's own processing, so they bound from above the
"DTMF arrival at callbridge → first action written" the issue asks for.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import BenchResult, SimHost, percentile, production_logging, run_async


async def measure(sim: SimHost, calls: int, presses: int) -> dict[str, Any]:
    from callbridge.app import App
    from callbridge.settings import Settings

    settings = Settings.model_validate(
        {
            "site_id": "bench",
            "ami": {"host": "127.0.0.1", "port": sim.port, "username": sim.user, "auth": "md5", "ping_interval": 5},
            "dialplan": {"path": str(sim.dialplans)},
        }
    )
    from bench.latency_probe import InternalProbe

    probe = InternalProbe(digit="1")
    probe.install()
    app = App(settings, ami_secret=sim.secret, enable_bus=False)
    await app.start()
    try:
        assert app.ami is not None
        await app.ami.wait_connected(30)
        loaded = await sim.acommand(f"load {calls}")
        await sim.acommand("traffic 60 20")
        t0 = time.monotonic()
        while len(app.tracker.calls) < calls and time.monotonic() - t0 < 60:  # the tracker has caught up
            await _sleep(0.05)
        tracked = len(app.tracker.calls)
        probe.reset()
        out = await sim.acommand(f"presses {presses} *1")
    finally:
        await app.stop()
        probe.uninstall()
    return {
        "live_channels": loaded["live"],
        "tracked_calls": tracked,
        "internal_ms": probe.samples_ms(),
        "stages_ms": probe.stage_ms(),
        **out,
    }


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


#: Full run: at the largest size, ROUNDS fresh simulator + daemon sessions of PRESSES[size] presses each, so
#: that one run pools >= 1,000 internal samples (issue 19.4: p99 < 2 ms over >= 1,000 samples, 3 runs of 3).
SIZES = (1_000, 5_000)
ROUNDS = 3
PRESSES = {1_000: 60, 5_000: 350}


def tail(values: list[float]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max of ``values`` (ms) and how many there are."""
    return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "p999_ms": percentile(values, 99.9), "max_ms": max(values, default=0.0),
            "samples": len(values)}  # fmt: skip


def _round(calls: int, presses: int, loop: str) -> dict[str, Any]:
    with SimHost() as sim:
        out = run_async(measure(sim, calls, presses), loop)
    if not out["samples"]:
        raise RuntimeError(f"no one-key transfer completed at {calls} calls (misses: {out['misses']})")
    if not out["internal_ms"]:
        raise RuntimeError(f"no DTMFEnd → action pair seen inside callbridge at {calls} calls")
    return out


def _size_result(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    internal = [ms for out in rounds for ms in out["internal_ms"]]
    first = [s["to_first_action_ms"] for out in rounds for s in out["samples"]]
    done = [s["to_complete_ms"] for out in rounds for s in out["samples"]]
    stages: dict[str, list[float]] = {}
    for out in rounds:
        for stage, values in out["stages_ms"].items():
            stages.setdefault(stage, []).extend(values)
    pooled = tail(internal)
    return {
        **{f"internal_first_action_{key}": value for key, value in pooled.items()},
        "internal_rounds": [tail(out["internal_ms"]) for out in rounds],
        **{f"internal_{stage}_p50_ms": percentile(values, 50) for stage, values in stages.items()},
        **{f"internal_{stage}_p99_ms": percentile(values, 99) for stage, values in stages.items()},
        "first_action_p50_ms": percentile(first, 50),
        "first_action_p99_ms": percentile(first, 99),
        "first_action_max_ms": max(first),
        "complete_p50_ms": percentile(done, 50),
        "complete_p99_ms": percentile(done, 99),
        "samples": len(first),
        "misses": sum(out["misses"] for out in rounds),
        "tracked_calls": [out["tracked_calls"] for out in rounds],
    }


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    production_logging()
    sizes = (200,) if quick else SIZES
    results: dict[str, Any] = {}
    for calls in sizes:
        presses = 8 if quick else PRESSES[calls]
        rounds = ROUNDS if not quick and calls == sizes[-1] else 1
        results[f"{calls}"] = _size_result([_round(calls, presses, loop) for _ in range(rounds)])
    top = results[str(sizes[-1])]
    result = BenchResult(
        name="latency",
        params={
            "concurrent_calls": list(sizes),
            "presses_per_round": {str(calls): 8 if quick else PRESSES[calls] for calls in sizes},
            "rounds_at_largest": 1 if quick else ROUNDS,
            "code": "*1 (12345 → 110, blind)",
            "background": "60 calls/min per hotline, 20 s holding",
            "loop": loop,
            "clock": "internal_*: callbridge's process (DTMFEnd chunk in → first transfer action written); "
            "the others: simulator process (includes 2 loopback hops and the simulator's loop)",
        },
        results=results,
        targets={f"internal_first_action_p99_ms@{sizes[-1]}": "< 2"},
    )
    result.met = top["internal_first_action_p99_ms"] < 2.0
    return result
