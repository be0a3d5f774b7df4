"""Micro-benchmark: callbridge's MQTT publishing path against bare aiomqtt and ``mosquitto_pub -l``.

``python -m bench.mqtt_publish --count 50000`` starts a private mosquitto (unlimited queues) and a
counting subscriber in its own process, then measures, in this order and in the same invocation:

(a) bare aiomqtt 2.5, 64 QoS 1 publishes in flight (one task per publish, warning threshold raised);
(b) ``mosquitto_pub -l -q 1``, chunks of at most 50,000 lines, one client per chunk, all at once
    (a single client stops early after about 65,536 lines at QoS 1);
(c) callbridge's :class:`~callbridge.bus.publisher.Publisher` with the durable SQLite outbox: domain
    events handed over in small batches (as the tracker does), each event going to its hotline topic
    and its call topic; ``--count`` is the number of MQTT messages.

Every case publishes messages of the same size (the size of callbridge's envelope) and is counted by
the subscriber; a shortfall is reported as lost. Rates are messages per second from the first
publish to the last message counted. ``--profile`` runs (c) under pyinstrument and prints the profile.
This file runs standalone (its subscriber is ``python -m bench.mqtt_publish --counter``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHUNK = 50_000
IN_FLIGHT = 64


# --- the counting subscriber (its own process) ----------------------------------------------------


def counter_main(port: int, filters: list[str], idle: float) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    state: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        with lock:
            if not state["count"]:
                state["first"] = now
            state["count"] += 1
            state["last"] = now

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        client.subscribe([(f, 1) for f in filters])

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-counter-{time.monotonic_ns()}")
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not subscribed.wait(15):
        print(json.dumps({"error": "not subscribed"}), flush=True)
        return 1
    print("ready", flush=True)
    for line in sys.stdin:  # one expected count per case; the count restarts at 0 for each
        expected = int(line)
        last_seen, last_change = -1, time.monotonic()
        while True:
            with lock:
                count = state["count"]
            if count >= expected:
                break
            if count != last_seen:
                last_seen, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > idle:
                break
            time.sleep(0.005)
        with lock:
            print(json.dumps({**state, "expected": expected}), flush=True)
            state.update(count=0, first=0.0, last=0.0)
    client.loop_stop()
    client.disconnect()
    return 0


class Counter:
    def __init__(self, port: int, filters: list[str], idle: float = 5.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.mqtt_publish", "--counter", str(port), *filters, "--idle", str(idle)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"counter did not subscribe: {line!r}")

    def count(self, expected: int) -> dict[str, Any]:
        """Tell the subscriber how many to expect; blocks until it has them (or went idle)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{expected}\n")
        self.proc.stdin.flush()
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return report

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def outcome(name: str, started: float, report: dict[str, Any], expected: int) -> dict[str, Any]:
    elapsed = max(report["last"] - started, 1e-9)
    return {
        "case": name,
        "received": report["count"],
        "lost": max(0, expected - report["count"]),
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(report["count"] / elapsed),
    }


# --- the cases ------------------------------------------------------------------------------------


def sample_events(n_events: int) -> list[Any]:
    from callbridge.calls.events import CallOffered

    now = time.time()
    return [
        CallOffered(
            ts=now,
            call_id=f"1790000000.{i % 500}",
            hotline=("12345", "110", "119", "120")[i % 4],
            caller_num=f"1380013{i % 10000:04d}",
            caller_name="张三 Zhang San",
            channel=f"PJSIP/trunk-{i:08x}",
            endpoint="trunk-cn-telecom",
            context="from-trunk",
            did="12345",
        )
        for i in range(n_events)
    ]


def message_size(site: str) -> int:
    from callbridge.bus.envelope import build

    return len(build(sample_events(1)[0], site=site, seq=123456).payload)


async def case_aiomqtt(port: int, counter: Counter, count: int, payload: bytes) -> dict[str, Any]:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-bare", max_inflight_messages=IN_FLIGHT) as client:
        client.pending_calls_threshold = IN_FLIGHT * 4
        window = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int) -> None:
            try:
                await client.publish(f"bench/bare/{i % 500}", payload, qos=1)
            finally:
                window.release()

        started = time.time()
        async with asyncio.TaskGroup() as tg:
            for i in range(count):
                await window.acquire()
                tg.create_task(one(i))
    report = await asyncio.to_thread(counter.count, count)
    return outcome("aiomqtt, 64 in flight", started, report, count)


def case_mosquitto_pub(port: int, counter: Counter, count: int, payload: bytes, workdir: Path) -> dict[str, Any]:
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        return {"case": "mosquitto_pub -l", "error": "mosquitto_pub not installed"}
    line = payload.replace(b"\n", b" ") + b"\n"
    files = []
    for c in range(math.ceil(count / CHUNK)):
        path = workdir / f"chunk{c}.txt"
        path.write_bytes(line * min(CHUNK, count - c * CHUNK))
        files.append(path)
    started = time.time()
    procs = [
        subprocess.Popen(
            [binary, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", f"bench/mp/{c}", "-l", "-i", f"bench-mp-{c}"],
            stdin=path.open("rb"),
            stdout=subprocess.DEVNULL,
        )
        for c, path in enumerate(files)
    ]
    report = counter.count(count)
    for proc in procs:
        proc.wait(timeout=60)
    return outcome(f"mosquitto_pub -l ({len(procs)} clients)", started, report, count)


_OLD_MODULES = ("envelope", "outbox", "publisher", "state", "topics")


def load_publisher_at(ref: str, workdir: Path) -> Any:
    """``Publisher`` as it was at git ``ref`` (its bus modules copied into a private package)."""
    import importlib

    package = workdir / "bus_before"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in _OLD_MODULES:
        source = subprocess.run(
            ["git", "show", f"{ref}:callbridge/bus/{name}.py"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        for other in _OLD_MODULES:
            source = source.replace(f"callbridge.bus.{other} ", f"bus_before.{other} ")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(workdir))
    try:
        return importlib.import_module("bus_before.publisher").Publisher
    finally:
        sys.path.remove(str(workdir))


async def case_publisher(
    port: int,
    counter: Counter,
    count: int,
    workdir: Path,
    batch: int,
    per_tick: int,
    profile: bool,
    before: str | None = None,
) -> dict[str, Any]:
    from callbridge.bus.config import BusSettings

    if before:
        Publisher = load_publisher_at(before, workdir)
    else:
        from callbridge.bus.publisher import Publisher

    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "site": "bench",
        "outbox_path": workdir / f"outbox-{before or 'now'}.sqlite3",
        "outbox_max_rows": 1_000_000,
        "client_id": "bench-callbridge",
        "in_flight": IN_FLIGHT,
    }
    settings = BusSettings(**options)
    events = sample_events(count // 2)  # each event: hotline topic + call topic
    expected = len(events) * 2
    publisher = Publisher(settings)
    runner = asyncio.create_task(publisher.run())
    profiler: Any = None
    try:
        async with asyncio.timeout(10):
            await publisher.wait_connected()
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()
        started = time.time()
        for i in range(0, len(events), batch):
            publisher.publish_events_nowait(events[i : i + batch])
            # The AMI reader hands over the events of one socket read (~100 AMI events per 64 KiB)
            # and then yields to the loop; a producer far ahead of the broker would only measure
            # SQLite growth, so it also holds back while a large backlog is pending.
            if (i // batch) % per_tick == per_tick - 1:
                await asyncio.sleep(0)
            while publisher.outbox_depth > 20_000:  # noqa: ASYNC110 - polling a depth, no event for it
                await asyncio.sleep(0.001)
        async with asyncio.timeout(120):
            await publisher.wait_drained()
        drained = time.time()
        if profiler is not None:
            profiler.stop()
        report = await asyncio.to_thread(counter.count, expected)
    finally:
        publisher.stop(drain_timeout=1.0)
        async with asyncio.timeout(10):
            await runner
        publisher.outbox.close()
    label = f"callbridge Publisher + outbox ({batch} ev/call, {per_tick} calls/tick)"
    result = outcome(label + (f" @ {before}" if before else ""), started, report, expected)
    result["events_per_s"] = round(result["msgs_per_s"] / 2)
    result["drained_s"] = round(drained - started, 3)
    if profiler is not None:
        show_all = bool(os.environ.get("PROFILE_ALL"))  # every frame, not only callbridge's
        print(profiler.output_text(unicode=True, color=False, show_all=show_all), file=sys.stderr)
    return result


# --- main -----------------------------------------------------------------------------------------


def run(
    count: int, batch: int, per_tick: int, cases: str, profile: bool, before: str | None = None
) -> list[dict[str, Any]]:
    from callbridge.testing.mosquitto import Mosquitto

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        workdir = Path(tmp)
        with Mosquitto(workdir / "broker") as broker:
            counter = Counter(broker.port, ["bench/#", "callbridge/bench/events/#", "callbridge/bench/calls/#"])
            try:
                payload = b"x" * message_size("bench")
                if "a" in cases:
                    results.append(asyncio.run(case_aiomqtt(broker.port, counter, count, payload)))
                if "b" in cases:
                    results.append(case_mosquitto_pub(broker.port, counter, count, payload, workdir))
                if before:
                    results.append(asyncio.run(
                        case_publisher(broker.port, counter, count, workdir, batch, per_tick, False, before)
                    ))  # fmt: skip
                if "c" in cases:
                    results.append(
                        asyncio.run(case_publisher(broker.port, counter, count, workdir, batch, per_tick, profile))
                    )
            finally:
                counter.close()
        for r in results:
            r["payload_bytes"] = len(payload)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50_000, help="MQTT messages per case")
    parser.add_argument("--batch", type=int, default=1, help="events per publish_events call in (c)")
    parser.add_argument("--per-tick", type=int, default=32, help="publish_events calls per loop iteration in (c)")
    parser.add_argument("--cases", default="abc", help="subset of a, b, c")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of (c) on stderr")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--before", metavar="GIT_REF", help="also run (c) with callbridge/bus/ as at this git ref")
    parser.add_argument("--counter", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--idle", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="publisher window in (a) and (c)")
    args = parser.parse_args(argv)
    globals()["IN_FLIGHT"] = args.in_flight
    if args.counter:
        return counter_main(int(args.counter[0]), args.counter[1:], args.idle)
    results = run(args.count, args.batch, args.per_tick, args.cases, args.profile, args.before)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    base = next((r["msgs_per_s"] for r in results if r["case"].startswith("mosquitto_pub")), None)
    print(f"{'case':<66} {'msgs/s':>9} {'lost':>6} {'vs mosquitto_pub':>17}")
    for r in results:
        if "error" in r:
            print(f"{r['case']:<66} {r['error']}")
            continue
        ratio = f"{r['msgs_per_s'] / base:.2f}x" if base else "-"
        print(f"{r['case']:<66} {r['msgs_per_s']:>9} {r['lost']:>6} {ratio:>17}")
    print(f"(payload {results[0].get('payload_bytes')} bytes, QoS 1, {args.count} messages per case)")
    return 0 if all(r.get("lost", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
