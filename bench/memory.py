"""Benchmark 4 — memory per tracked call at 10,000 concurrent calls (tracker only).

In a fresh process (so memory freed by earlier benchmarks cannot be reused and hide growth): warm up
with 500 complete calls, ``gc.collect()``, read RSS; then open 10,000 realistic calls (issue 19.5: 3
channels, 1 bridge) — each a hotline trunk leg queued, an agent leg dialled, answered and bridged, then
an expert the agent dials into the same bridge (three-way), with the queue state and VarSets — as the
real AMI bytes → framer → decode → tracker produce them — ``gc.collect()``, read RSS again.
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

from bench.amistream import Channel, bridge_block, event, queue_call, snapshot
from bench.common import BenchResult, python_subprocess, rss_bytes

EPOCH = 1795917000
#: Events of a call up to "talking": everything before the first HangupRequest.
OPEN_UNTIL = b"Event: HangupRequest\r\n"
BRIDGE_ENTER = b"Event: BridgeEnter\r\n"


def open_call_bytes(n: int, rng: random.Random) -> Iterator[bytes]:
    """A call up to talking (trunk leg and agent bridged), then the agent's expert joins the bridge."""
    agent_enter = b""
    for raw in queue_call(n, rng, EPOCH):
        if raw.startswith(OPEN_UNTIL):
            break
        if raw.startswith(BRIDGE_ENTER) and not agent_enter:
            agent_enter = raw  # the agent's BridgeEnter: its snapshot, the bridge id
        yield raw
    yield from expert_joins(n, agent_enter.decode())


def expert_joins(n: int, agent_enter: str) -> Iterator[bytes]:
    """The third channel of a realistic call: the agent dials an expert, who answers and enters the bridge."""
    lines = agent_enter.split("\r\n")
    bid = next(line for line in lines if line.startswith("BridgeUniqueid: ")).split(": ", 1)[1]
    start = next(i for i, line in enumerate(lines) if line.startswith("Channel: "))
    agent = "".join(line + "\r\n" for line in lines[start:] if line)  # the agent's snapshot, as it was sent
    linkedid = next(line for line in lines if line.startswith("Linkedid: ")).split(": ", 1)[1]
    seat = 2001 + n % 50
    expert = Channel(f"PJSIP/expert{seat}-{n:08x}", f"{EPOCH + 1}.{n}", linkedid, str(seat), f"Expert {seat}",
                     "from-agents", str(seat))  # fmt: skip
    yield event("Newchannel", "call", snapshot(expert))
    yield event("DialBegin", "call", agent + snapshot(expert, "Dest") + f"DialString: expert{seat}\r\n")
    expert.state = "5"
    yield event("Newstate", "call", snapshot(expert))
    yield event("DialState", "call", agent + snapshot(expert, "Dest") + "DialStatus: RINGING\r\n")
    expert.state = "6"
    yield event("Newstate", "call", snapshot(expert))
    yield event("DialEnd", "call", agent + snapshot(expert, "Dest") + "DialStatus: ANSWER\r\n")
    yield event("BridgeEnter", "call", bridge_block(bid, 3) + snapshot(expert))


def feed_calls(first: int, count: int, feed: Callable[[bytes], None], *, complete: bool) -> None:
    rng = random.Random(first)
    for n in range(first, first + count):
        for raw in queue_call(n, rng, EPOCH) if complete else open_call_bytes(n, rng):
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
    if (ours["open_calls"], ours["channels"], ours["bridges"]) != (calls, 3 * calls, calls):
        raise RuntimeError(f"tracker holds {ours['open_calls']} calls, {ours['channels']} channels and "
                           f"{ours['bridges']} bridges, expected {calls}, {3 * calls} and {calls}")  # fmt: skip
    per_call = ours["rss_delta"] / calls
    naive_per_call = naive["rss_delta"] / calls
    result = BenchResult(
        name="memory",
        params={"concurrent_calls": calls,
                "call": "trunk leg queued + agent leg dialled, answered, bridged + expert dialled into the bridge",
                "measure": "RSS delta after gc.collect(), fresh process, after min(500, calls/4) warm-up calls",
                "arenas": "each child as the daemon: huge-page arenas if the kernel allows (callbridge/hugepages.py)"},
        results={"kib_per_call": per_call / 1024, "traced_kib_per_call": traced["traced_delta"] / calls / 1024,
                 "open_calls": ours["open_calls"], "channels": ours["channels"], "bridges": ours["bridges"]},
        baselines={"naive_header_dicts_kib_per_call": naive_per_call / 1024},
        ratios={"vs_naive_header_dicts": per_call / naive_per_call if naive_per_call else 0.0},
        targets={"kib_per_call": "<= 3"},  # issue 19.5: a realistic call, 3 channels and 1 bridge, as RSS
    )
    result.met = per_call / 1024 <= 3
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    from callbridge.hugepages import use_huge_arenas

    use_huge_arenas()  # as the daemon runs (callbridge run), for both children alike
    print(json.dumps(measure(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "trace")), flush=True)
