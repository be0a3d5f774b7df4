"""Benchmark 5 — resync: from (re)connect to a fully rebuilt call picture with 5,000 live channels.

The simulator (own process, the example dialplans rendered) holds 5,000 callers waiting in the 12345
queue. callbridge's ``AmiClient`` connects and logs in, runs the post-connect resync
(CoreShowChannels, BridgeList/BridgeInfo, QueueStatus, ConfbridgeListRooms) and delivers
``Resynced``; ``CallTracker.resync`` rebuilds the state. Measured: connect → state rebuilt, split
into connect + login, list actions, tracker rebuild. A fresh connect does exactly what a reconnect
does after its back-off pause, which is policy rather than resync work and is not included.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import BenchResult, SimHost, median, production_logging, run_async

TIMEOUT_S = 120.0


async def resync_once(sim: SimHost) -> dict[str, float]:
    from callbridge.ami.client import AmiClient
    from callbridge.ami.stream import AmiConnected, Resynced
    from callbridge.calls.tracker import CallTracker

    tracker = CallTracker()
    client = AmiClient("127.0.0.1", sim.port, sim.user, sim.secret, ping_interval=3600.0, resync_timeout=TIMEOUT_S)
    t0 = time.perf_counter()
    connected = 0.0
    client.start()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async for item in client.stream():
                if isinstance(item, AmiConnected):
                    connected = time.perf_counter()
                elif isinstance(item, Resynced):
                    listed = time.perf_counter()
                    events = list(item.events)
                    tracker.resync(events)
                    done = time.perf_counter()
                    break
    finally:
        await client.close()
    return {"total_s": done - t0, "connect_login_s": connected - t0, "lists_s": listed - connected,
            "tracker_s": done - listed, "channels": len(tracker.channels), "calls": len(tracker.calls),
            "list_events": len(events)}


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    production_logging()
    channels = 1_000 if quick else 5_000
    runs = 1 if quick else 3
    samples: list[dict[str, float]] = []
    with SimHost() as sim:
        live = sim.command(f"load {channels}")["live"]
        if live < channels:
            raise RuntimeError(f"simulator holds {live} channels, expected {channels}")
        for _ in range(runs):
            sample = run_async(resync_once(sim), loop)
            if sample["channels"] < channels:
                raise RuntimeError(f"tracker rebuilt {sample['channels']} channels of {channels}")
            samples.append(sample)
    keys = ("total_s", "connect_login_s", "lists_s", "tracker_s")
    result = BenchResult(
        name="resync",
        params={"live_channels": live, "runs": runs, "loop": loop, "simulator": "own process"},
        results={**{k: median([s[k] for s in samples]) for k in keys},
                 "channels_rebuilt": samples[-1]["channels"], "calls_rebuilt": samples[-1]["calls"],
                 "list_events": samples[-1]["list_events"], "total_runs_s": [s["total_s"] for s in samples]},
        targets={"total_s": "< 1.0"},
    )
    result.met = result.results["total_s"] < 1.0
    return result
