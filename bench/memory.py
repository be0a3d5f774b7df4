"""Benchmark 4 — memory per tracked call at 10,000 concurrent calls (tracker only).

In a fresh process (so memory freed by earlier benchmarks cannot be reused and hide growth): warm up
with 500 complete calls, ``gc.collect()``, read RSS; then open 10,000 calls — each a hotline trunk
leg queued, an agent leg dialled, answered and bridged (channels, a bridge, queue state, VarSets),
as the real AMI bytes → framer → decode → tracker produce them — ``gc.collect()``, read RSS again.
The per-call figure is the RSS delta / calls; tracemalloc's count of bytes still allocated is
reported beside it. Baseline: the naive store many panoramisk users write — the last header dict of
every channel and bridge, keyed by Uniqueid / BridgeUniqueid.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from bench.amistream import queue_call
from bench.common import BenchResult, python_subprocess, rss_bytes

#: Events of a call up to "talking": everything before the first HangupRequest.
OPEN_UNTIL = b"Event: HangupRequest\r\n"


def open_call_bytes(n: int, rng: random.Random) -> Iterator[bytes]:
    for raw in queue_call(n, rng, 1795917000):
        if raw.startswith(OPEN_UNTIL):
            return
        yield raw


def feed_calls(first: int, count: int, feed: Callable[[bytes], None], *, complete: bool) -> None:
    rng = random.Random(first)
    for n in range(first, first + count):
        for raw in queue_call(n, rng, 1795917000) if complete else open_call_bytes(n, rng):
            feed(raw)


def measure(calls: int, mode: str, trace: bool) -> dict[str, Any]:
    """Runs in the child process."""
    from bench.common import production_logging
    from callbridge.ami.decode import decode
    from callbridge.ami.framing import AmiFramer, AmiMessage

    production_logging()
    framer = AmiFramer(expect_banner=False)
    holder: dict[str, Any] = {}
    if mode == "callbridge":
        from callbridge.calls.tracker import CallTracker

        tracker = CallTracker()
        holder["t"] = tracker

        def feed(raw: bytes) -> None:
            for frame in framer.feed(raw):
                if type(frame) is AmiMessage:
                    tracker.feed(decode(frame))
    else:
        store: dict[str, dict[str, str]] = {}
        holder["t"] = store

        def feed(raw: bytes) -> None:
            for frame in framer.feed(raw):
                if type(frame) is AmiMessage:
                    d = frame.as_dict()
                    key = d.get("Uniqueid") or d.get("BridgeUniqueid") or ""
                    if frame.name in ("Hangup", "BridgeDestroy"):
                        store.pop(key, None)
                    elif key:
                        store[key] = d

    feed_calls(10_000_000, min(500, calls // 4), feed, complete=True)  # warm-up: every code path, caches, interning
    gc.collect()
    if trace:
        tracemalloc.start()
    before = rss_bytes()
    traced_before = tracemalloc.get_traced_memory()[0] if trace else 0
    feed_calls(0, calls, feed, complete=False)
    gc.collect()
    after = rss_bytes()
    traced_after = tracemalloc.get_traced_memory()[0] if trace else 0
    out: dict[str, Any] = {"rss_delta": after - before, "traced_delta": traced_after - traced_before}
    if mode == "callbridge":
        t = holder["t"]
        out["open_calls"] = len(t.calls)
        out["channels"] = len(t.channels)
        out["bridges"] = len(t.bridges)
    else:
        out["entries"] = len(holder["t"])
    return out


def child(calls: int, mode: str, trace: bool) -> dict[str, Any]:
    with python_subprocess("bench.memory", "--child", str(calls), mode, "trace" if trace else "rss",
                           ready_timeout=600) as (proc, line):
        proc.wait(timeout=600)
        result: dict[str, Any] = json.loads(line)
        return result


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    calls = 1_000 if quick else 10_000
    ours = child(calls, "callbridge", trace=False)
    # tracemalloc slows feeding 2-3×: a second opinion for the full run only.
    traced = child(calls, "callbridge", trace=True) if not quick else {"traced_delta": 0}
    naive = child(calls, "naive", trace=False)
    if ours["open_calls"] < calls:
        raise RuntimeError(f"tracker holds {ours['open_calls']} calls, expected {calls}")
    per_call = ours["rss_delta"] / calls
    naive_per_call = naive["rss_delta"] / calls
    result = BenchResult(
        name="memory",
        params={"concurrent_calls": calls, "call": "trunk leg queued + agent leg dialled, answered, bridged",
                "measure": "RSS delta after gc.collect(), fresh process, after min(500, calls/4) warm-up calls"},
        results={"kib_per_call": per_call / 1024, "traced_kib_per_call": traced["traced_delta"] / calls / 1024,
                 "open_calls": ours["open_calls"], "channels": ours["channels"], "bridges": ours["bridges"]},
        baselines={"naive_header_dicts_kib_per_call": naive_per_call / 1024},
        ratios={"vs_naive_header_dicts": per_call / naive_per_call if naive_per_call else 0.0},
        targets={"kib_per_call": "<= 8"},
    )
    result.met = per_call / 1024 <= 8
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    print(json.dumps(measure(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "trace")), flush=True)
