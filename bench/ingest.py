"""Benchmark 1 — AMI ingest: events/s through callbridge's path versus panoramisk and a bare parser.

The stream (see :mod:`bench.amistream`) is served over loopback TCP by :mod:`bench.ami_server` in a
separate process. Each client logs in, then counts events until the final ``BenchEnd``; the time is
from connect to that event. Clients, each in the same process one after the other, on the same loop:

* ``callbridge``: the daemon's path — ``AmiClient`` (login, resync, ``AmiProtocol`` with
  :class:`~callbridge.ami.framing.AmiFramer`, :func:`~callbridge.ami.decode.decode`) → ``batches()`` →
  ``CallTracker.feed``;
* ``callbridge_core``: framing → decode → tracker in a bare Protocol (what the client adds is the rest);
* ``panoramisk``: panoramisk 1.4 ``Manager`` with a counting callback on ``*`` (baseline a);
* ``bare``: an asyncio Protocol that splits on ``\\r\\n\\r\\n`` and builds a dict per event (baseline b).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from bench.amistream import stream_file
from bench.common import BenchResult, median, production_logging, python_subprocess, run_async
from bench.tracestream import stream_file as trace_stream
from callbridge.ami.decode import decode
from callbridge.ami.event_types import AmiEvent, GenericEvent
from callbridge.ami.framing import AmiFramer, AmiMessage, encode_message

TIMEOUT_S = 600.0
# "plain": the scripted server starts the stream right after the login reply (no resync lists).
LOGIN = encode_message([("Action", "Login"), ("ActionID", "1"), ("Username", "plain"), ("Secret", "bench")])


def tracker_factory() -> tuple[Callable[[Any], Any] | None, str]:
    """``CallTracker().feed`` when the tracker exists, else ``None`` and why."""
    try:
        from callbridge.calls.tracker import CallTracker
    except ImportError as exc:
        return None, f"tracker not available ({exc}); callbridge path measured as framing → decode"
    return CallTracker().feed, "framing → decode → CallTracker.feed"


class CallbridgeCounter(asyncio.Protocol):
    """callbridge's own ingest path, as the AMI client runs it, counting events."""

    def __init__(self, done: asyncio.Future[int], feed: Callable[[Any], Any] | None) -> None:
        self.done = done
        self.framer = AmiFramer()
        self.feed = feed
        self.count = 0
        self.domain_events = 0
        self.mark: tuple[float, float] | None = None  # the clocks at BenchStart

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast rather than isinstance.
        cast(asyncio.WriteTransport, transport).write(LOGIN)

    def data_received(self, data: bytes) -> None:
        feed = self.feed
        for frame in self.framer.feed(data):
            if type(frame) is not AmiMessage or frame.kind != "event":
                continue
            self.count += 1
            ev = decode(frame)
            if feed is not None:
                self.domain_events += len(feed(ev))
            name = frame.name
            if name == START:
                self.count, self.mark = 0, clocks()
            elif name == "BenchEnd" and not self.done.done():
                self.done.set_result(self.count)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed after {self.count} events"))


class BareCounter(asyncio.Protocol):
    """Baseline (b): split on the blank line, decode, build a dict; nothing else."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done
        self.buf = b""
        self.count = 0
        self.mark: tuple[float, float] | None = None  # the clocks at BenchStart

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast rather than isinstance.
        cast(asyncio.WriteTransport, transport).write(LOGIN)

    def data_received(self, data: bytes) -> None:
        parts = (self.buf + data).split(b"\r\n\r\n")
        self.buf = parts.pop()
        for part in parts:
            msg = dict(line.split(": ", 1) for line in part.decode("utf-8").split("\r\n") if ": " in line)
            if "Event" in msg:
                self.count += 1
                name = msg["Event"]
                if name == START:
                    self.count, self.mark = 0, clocks()
                elif name == "BenchEnd" and not self.done.done():
                    self.done.set_result(self.count)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed after {self.count} events"))


#: What a client run gives: events counted, wall seconds and this process's CPU seconds, all from connect (from
#: ``BenchStart`` when the stream has one: a steady-state stream's untimed prefix) to the end event (not the
#: client's teardown: freeing a tracker of 100k calls is no cost per event, and the bare parser has nothing to
#: free).
Run = tuple[int, float, float]
START = "BenchStart"


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(mark: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - mark[0], cpu - mark[1]


async def _run_protocol(port: int, make: Callable[[asyncio.Future[int]], CallbridgeCounter | BareCounter]) -> Run:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    mark = clocks()
    transport, protocol = await loop.create_connection(lambda: make(done), "127.0.0.1", port)
    try:
        count = await asyncio.wait_for(done, TIMEOUT_S)
        return count, *_since(protocol.mark or mark)
    finally:
        transport.close()


async def run_callbridge_core(port: int) -> Run:
    feed, _ = tracker_factory()
    return await _run_protocol(port, lambda done: CallbridgeCounter(done, feed))


async def run_callbridge(port: int) -> Run:
    """The daemon's path: AmiClient (login, resync, panoramisk transport with our protocol) → batches()."""
    from callbridge.ami.client import AmiClient

    feed, _ = tracker_factory()
    client = AmiClient("127.0.0.1", port, "callbridge", "bench", ping_interval=3600.0, resync_timeout=60.0)
    count = 0
    mark = clocks()
    client.start()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async for batch in client.batches():
                done = False
                for item in batch:
                    if not isinstance(item, AmiEvent):
                        continue  # AmiConnected, Resynced (empty here), AmiLost
                    count += 1
                    if feed is not None:
                        feed(item)
                    if type(item) is GenericEvent:
                        if item.name == START:
                            count, mark = 0, clocks()
                        elif item.name == "BenchEnd":
                            done = True
                            break
                if done:
                    break
    finally:
        elapsed, used = _since(mark)
        await client.close()
    return count, elapsed, used


async def run_bare(port: int) -> Run:
    return await _run_protocol(port, BareCounter)


async def run_panoramisk(port: int) -> Run:
    from panoramisk import Manager

    quiet = logging.getLogger("panoramisk")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its reconnect chatter; put back after: a client leaves no global state
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    count = 0
    mark: tuple[float, float]  # set at connect, reset at BenchStart

    def on_event(_manager: Any, message: Any) -> None:
        nonlocal count, mark
        count += 1
        if message.event == START:
            count, mark = 0, clocks()
        elif message.event == "BenchEnd" and not done.done():
            done.set_result(count)

    manager = Manager(
        loop=loop, host="127.0.0.1", port=port, username="plain", secret="bench", ping_delay=3600,
        reconnect_timeout=3600,
    )
    manager.register_event("*", on_event)
    mark = clocks()
    await manager.connect()
    try:
        total = await asyncio.wait_for(done, TIMEOUT_S)
        return total, *_since(mark)
    finally:
        manager.close()
        quiet.setLevel(level)


CLIENTS: dict[str, Callable[[int], Any]] = {
    "callbridge": run_callbridge,
    "callbridge_core": run_callbridge_core,
    "panoramisk": run_panoramisk,
    "bare": run_bare,
}


@contextlib.contextmanager
def daemon_gc(enabled: bool = True) -> Iterator[None]:
    """The collector tuned as ``callbridge run`` tunes it (``lifecycle.tune_gc``): every client of the
    comparison runs under it, the baselines too (the default collector cost them about 20 %)."""
    if not enabled:
        yield
        return
    from callbridge.lifecycle import tune_gc

    before = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def measure(port: int, expected: int, runs: int, loop: str, clients: list[str] | None = None) -> dict[str, list[float]]:
    """events/s per client per run; a client that does not see every event is an error, not a slow result."""
    rates: dict[str, list[float]] = {name: [] for name in (clients or CLIENTS)}
    # Round 0 warms every client up untimed (imports, the heap grown to its working size: the first pass
    # of a fresh process page-faults its way through it), so that no client pays for running first.
    for round_no in range(runs + 1):
        for name in rates:
            gc.collect()
            with daemon_gc():  # the same collector settings for every client
                count, seconds, _ = run_async(CLIENTS[name](port), loop)
            if count != expected:
                raise RuntimeError(f"{name} counted {count} events, expected {expected}")
            if round_no:
                rates[name].append(count / seconds)
    return rates


def measure_stream(path: Path, expected: int, runs: int, loop: str) -> dict[str, float | list[float]]:
    """Medians and rounds of every client on one stream, with the ratios to the baselines."""
    with python_subprocess("bench.ami_server", str(path)) as (_, port_line):
        rates = measure(int(port_line), expected, runs, loop)
    cb, core, pano, bare = (median(rates[k]) for k in ("callbridge", "callbridge_core", "panoramisk", "bare"))
    return {"callbridge": cb, "callbridge_core": core, "panoramisk": pano, "bare": bare,
            "vs_panoramisk": cb / pano, "vs_bare": cb / bare, "core_vs_panoramisk": core / pano,
            **{f"{k}_runs": v for k, v in rates.items()}}  # fmt: skip


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    production_logging()
    events = 50_000 if quick else 500_000
    runs = 1 if quick else 5  # median of 5: one round disturbed by another process does not move it
    _, path_note = tracker_factory()
    params = {"runs": runs, "loop": loop, "server": "separate process, sendfile",
              "gc": "daemon tune_gc for every client", "path": path_note}  # fmt: skip
    result = BenchResult(name="ingest", params=params)
    for name, (path, expected) in (("synthetic", stream_file(events)), ("traces", trace_stream(events))):
        m = measure_stream(path, expected, runs, loop)
        prefix = "" if name == "synthetic" else "traces_"
        result.params[name] = {"events": expected, "bytes_per_event": round(path.stat().st_size / expected)}
        if name == "synthetic":  # the headline stream keeps its figures at the top level too
            result.params |= {"events": expected, "bytes_per_event": result.params[name]["bytes_per_event"]}
        result.results |= {f"{prefix}callbridge_events_per_s": m["callbridge"],
                           f"{prefix}callbridge_core_events_per_s": m["callbridge_core"],
                           f"{prefix}callbridge_runs": m["callbridge_runs"]}  # fmt: skip
        result.baselines |= {f"{prefix}panoramisk_events_per_s": m["panoramisk"],
                             f"{prefix}bare_protocol_events_per_s": m["bare"],
                             f"{prefix}panoramisk_runs": m["panoramisk_runs"],
                             f"{prefix}bare_runs": m["bare_runs"]}  # fmt: skip
        for key in ("vs_panoramisk", "vs_bare", "core_vs_panoramisk"):
            result.ratios[prefix + key] = float(m[key])  # type: ignore[arg-type]
    result.targets = {"vs_panoramisk": ">= 2.5", "traces_vs_panoramisk": ">= 2.5"}
    result.met = result.ratios["vs_panoramisk"] >= 2.5 and result.ratios["traces_vs_panoramisk"] >= 2.5
    result.notes.append(path_note)
    result.notes.append(
        "callbridge = AmiClient (AmiProtocol framing, correlation, decode, batches()) + tracker; "
        "callbridge_core = AmiFramer → decode → tracker in a bare Protocol (no client queue); "
        "traces_* = the stream built from the recorded Asterisk 22 traces (bench/tracestream.py)"
    )
    return result
