"""Benchmark 6 — soak: simulated traffic through the daemon for ``--duration`` seconds.

The simulator (own process) runs Poisson arrivals on the five hotlines with exponential holding
times; queued callers are answered by the dialplans' agents, and every few seconds an agent in a call
presses the one-key code ``*1`` (a transfer to 110). callbridge is the real ``App`` (AMI client,
tracker, engine; bus off: the MQTT path is benchmark 2). Sampled every second: this process's RSS,
the tracker's open calls and channels. At the end the simulator stops the traffic and hangs up every
channel; then every call the tracker saw offered must have ended (an error otherwise) and it must
hold no call and no channel.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import BenchResult, SimHost, production_logging, rss_bytes, run_async

SETTLE_S = 15.0


def slope_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples)
    return 60.0 * sum((t - mx) * (v - my) for t, v in samples) / den if den else 0.0


async def soak(sim: SimHost, duration: float, per_min: float, hold: float) -> dict[str, Any]:
    from callbridge.app import App
    from callbridge.domain import DomainEvent
    from callbridge.settings import Settings

    # Only the calls still open are kept (the harness must not grow with the traffic it measures); the
    # tracker offers every call before it ends it, so an end without an open offer is not counted.
    open_ids: set[str] = set()
    counts = {"events": 0, "offered": 0, "ended": 0}

    def sink(events: Any) -> None:
        for event in events:
            assert isinstance(event, DomainEvent)
            counts["events"] += 1
            if event.TYPE == "call.offered" and event.call_id:
                open_ids.add(event.call_id)
                counts["offered"] += 1
            elif event.TYPE == "call.ended" and event.call_id in open_ids:
                open_ids.discard(event.call_id)
                counts["ended"] += 1

    settings = Settings.model_validate({
        "site_id": "bench",
        "ami": {"host": "127.0.0.1", "port": sim.port, "username": sim.user, "auth": "md5", "ping_interval": 5},
        "dialplan": {"path": str(sim.dialplans)},
    })
    app = App(settings, ami_secret=sim.secret, enable_bus=False, event_sinks=[sink])
    rss: list[tuple[float, float]] = []
    calls: list[tuple[float, float]] = []
    await app.start()
    try:
        assert app.ami is not None
        await app.ami.wait_connected(15)
        await sim.acommand(f"traffic {per_min} {hold}")
        t0 = time.monotonic()
        presses = 0
        while (now := time.monotonic() - t0) < duration:
            await asyncio.sleep(1.0)
            rss.append((now, rss_bytes() / 1024))
            calls.append((now, float(len(app.tracker.calls))))
            if int(now) % 3 == 0:
                presses += (await sim.acommand("press *1"))["agent"] is not None
        drained = await sim.acommand("drain")
        deadline = time.monotonic() + SETTLE_S
        # Polling another component's state, bounded by the deadline.
        while time.monotonic() < deadline and (app.tracker.calls or app.tracker.channels or open_ids):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        left_calls, left_channels = len(app.tracker.calls), len(app.tracker.channels)
    finally:
        await app.stop()
    half = [s for s in rss if s[0] >= duration / 2]
    first = [v for t, v in calls if duration / 4 <= t < duration * 5 / 8]
    second = [v for t, v in calls if t >= duration * 5 / 8]
    return {
        "sim_calls_placed": drained["placed"], "offered": counts["offered"], "ended": counts["ended"],
        "not_ended": sorted(open_ids)[:20], "left_calls": left_calls, "left_channels": left_channels,
        "rss_start_kib": rss[0][1] if rss else 0.0, "rss_end_kib": rss[-1][1] if rss else 0.0,
        "rss_slope_2nd_half_kib_per_min": slope_per_min(half),
        "open_calls_mean_1st": sum(first) / len(first) if first else 0.0,
        "open_calls_mean_2nd": sum(second) / len(second) if second else 0.0,
        "open_calls_max": max((v for _, v in calls), default=0.0), "domain_events": counts["events"],
        "presses": presses,
    }


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    production_logging()
    seconds = duration or (20.0 if quick else 1800.0)
    per_min, hold = (120.0, 6.0) if quick else (120.0, 30.0)
    with SimHost() as sim:
        out = run_async(soak(sim, seconds, per_min, hold), loop)
    if out["not_ended"] or out["left_calls"] or out["left_channels"]:
        raise RuntimeError(
            f"calls did not end in the tracker after ending in the simulator: {len(out['not_ended'])} not ended "
            f"(e.g. {out['not_ended'][:3]}), {out['left_calls']} calls / {out['left_channels']} channels left"
        )
    result = BenchResult(
        name="soak",
        params={"duration_s": seconds, "calls_per_min_per_hotline": per_min, "hotlines": 5, "mean_holding_s": hold,
                "one_key_presses": "*1 every 3 s", "loop": loop, "bus": "off (benchmark 2 covers MQTT)"},
        results={k: v for k, v in out.items() if k != "not_ended"},
        targets={"every call ends": "offered == ended, nothing left", "rss": "flat (2nd-half slope <= 256 KiB/min)",
                 "open calls": "flat (2nd vs 1st window within 25 % + 5)"},
    )
    flat_calls = abs(out["open_calls_mean_2nd"] - out["open_calls_mean_1st"]) <= 0.25 * out["open_calls_mean_1st"] + 5
    result.met = out["rss_slope_2nd_half_kib_per_min"] <= 256 and flat_calls
    return result
