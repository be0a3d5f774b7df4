"""Benchmark 2 — AMI → MQTT end to end, through the daemon, against ``mosquitto_pub -l``.

callbridge: the ingest stream (served by :mod:`bench.ami_server` in its own process) → ``App`` (the
composition root ``callbridge run`` uses: AmiClient → tracker → engine → bus publisher with the
durable SQLite outbox) → a private mosquitto (``max_queued_messages 0``) at QoS 1 → a counting
subscriber in its own process (:mod:`bench.mqtt_counter`). Every message handed to the publisher must
arrive: a shortfall is an error, not a slow result.

Baseline: ``mosquitto_pub -l -q 1`` publishing the same number of messages of the same average size
(chunks of at most 50,000 lines, one client per chunk, all at once: mosquitto_pub stops early after
about 65,536 lines at QoS 1), counted by the same subscriber.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.amistream import END_CALL_ID, stream_file
from bench.common import (
    REPO,
    BenchResult,
    keep_apart,
    median,
    production_logging,
    python_subprocess,
    run_async,
)

TIMEOUT_S = 900.0
SITE = "bench"
CHUNK = 50_000


class Counter:
    """The subscriber process: start, wait until subscribed, tell it the count, read its report."""

    def __init__(self, port: int, filters: list[str], idle: float = 5.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.mqtt_counter", str(port), *filters, "--idle", str(idle)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        keep_apart(self.proc.pid)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"MQTT counter did not subscribe: {line!r}")

    def expect(self, count: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return report

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@dataclass
class E2eRun:
    ami_events: int
    domain_events: int
    messages: int
    received: int
    avg_bytes: float
    ami_events_per_s: float
    messages_per_s: float


async def run_callbridge(ami_port: int, mqtt_port: int, workdir: Path, ami_events: int) -> E2eRun:
    from callbridge.app import App
    from callbridge.bus.topics import Topics
    from callbridge.domain import DomainEvent
    from callbridge.settings import Settings

    counter = await asyncio.to_thread(Counter, mqtt_port, [f"callbridge/{SITE}/events/#", f"callbridge/{SITE}/calls/#"])
    topics = Topics(SITE)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    tally = {"messages": 0, "events": 0, "first": 0.0}

    def sink(events: Any) -> None:
        if not tally["first"]:
            tally["first"] = time.time()
        for event in events:
            assert isinstance(event, DomainEvent)
            tally["events"] += 1
            tally["messages"] += len(topics.for_event(event))
            if event.call_id == END_CALL_ID and event.TYPE == "call.ended" and not done.done():
                done.set_result(time.time())

    settings = Settings.model_validate({
        "site_id": SITE,
        "ami": {"host": "127.0.0.1", "port": ami_port, "auth": "plain", "ping_interval": 3600},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "site": SITE, "outbox_path": str(workdir / "outbox.sqlite3"),
                 "outbox_max_rows": 1_000_000},
        "dialplan": {"path": str(REPO / "dialplans")},
    })
    app = App(settings, ami_secret="bench", event_sinks=[sink], enable_bus=True)
    try:
        await app.start()
        fed_at = await asyncio.wait_for(done, TIMEOUT_S)
        assert app.publisher is not None
        # Every row acknowledged by the broker (PUBACK) before the subscriber's count is final.
        await asyncio.wait_for(app.publisher.wait_drained(), TIMEOUT_S)
        expected = int(tally["messages"])  # stopping the app publishes more (ami.lost): not counted
        domain_events = int(tally["events"])
        counter.expect(expected)
        report = await asyncio.to_thread(counter.result)
    finally:
        counter.kill()
        await app.stop()
    first = tally["first"]
    return E2eRun(
        ami_events=ami_events,
        domain_events=domain_events,
        messages=expected,
        received=int(report["count"]),
        avg_bytes=report["bytes"] / max(1, report["count"]),
        ami_events_per_s=ami_events / max(1e-9, fed_at - first),
        messages_per_s=report["count"] / max(1e-9, report["last"] - first),
    )


def run_mosquitto_pub(mqtt_port: int, messages: int, size: int, workdir: Path) -> dict[str, Any]:
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        raise FileNotFoundError("mosquitto_pub")
    topic = f"callbridge/{SITE}/events/12345/baseline"
    payload = ('{"pad":"' + "x" * max(0, size - 10) + '"}\n').encode()
    files: list[Path] = []
    for i in range(math.ceil(messages / CHUNK)):
        lines = min(CHUNK, messages - i * CHUNK)
        path = workdir / f"chunk{i}.txt"
        path.write_bytes(payload * lines)
        files.append(path)
    counter = Counter(mqtt_port, [f"callbridge/{SITE}/events/#"])
    try:
        counter.expect(messages)
        start = time.time()
        procs = []
        for path in files:
            with path.open("rb") as src:
                procs.append(subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
                                               "-t", topic, "-l"], stdin=src))
        for proc in procs:
            proc.wait(timeout=TIMEOUT_S)
        report = counter.result()
    finally:
        counter.kill()
    report["messages_per_s"] = report["count"] / max(1e-9, report["last"] - start)
    return report


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    from callbridge.testing.mosquitto import Mosquitto

    production_logging()
    # 200k events (not 500k) and one run in full mode: the daemon path runs at a few thousand events/s
    # here, and three 500k runs would take most of an hour.
    events = 15_000 if quick else 200_000
    runs = 1
    path, ami_events = stream_file(events)
    ours: list[E2eRun] = []
    theirs: list[dict[str, Any]] = []
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="cb-bench-e2e-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
        python_subprocess("bench.ami_server", str(path)) as (_, port_line),
    ):
        if broker.pid is not None:
            notes.append(keep_apart(broker.pid))  # the broker beside the other servers, not on our core
        for i in range(runs):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            one = run_async(run_callbridge(int(port_line), broker.port, work, ami_events), loop)
            if one.received < one.messages:
                raise RuntimeError(f"lost MQTT messages: {one.messages - one.received} of {one.messages}")
            ours.append(one)
            try:
                theirs.append(run_mosquitto_pub(broker.port, one.messages, round(one.avg_bytes), work))
            except FileNotFoundError:
                notes.append("mosquitto_pub not installed (Debian: mosquitto-clients): no baseline")
    ours_rate = median([r.messages_per_s for r in ours])
    base_rate = median([r["messages_per_s"] for r in theirs]) if theirs else 0.0
    last = ours[-1]
    result = BenchResult(
        name="e2e_mqtt",
        params={"ami_events": ami_events, "mqtt_messages": last.messages, "domain_events": last.domain_events,
                "avg_payload_bytes": round(last.avg_bytes), "qos": 1, "runs": runs, "loop": loop,
                "outbox": "SQLite WAL (synchronous=NORMAL)", "broker": "mosquitto, max_queued_messages 0"},
        results={"callbridge_messages_per_s": ours_rate,
                 "callbridge_ami_events_per_s": median([r.ami_events_per_s for r in ours]),
                 "lost": sum(r.messages - r.received for r in ours),
                 "callbridge_runs": [r.messages_per_s for r in ours]},
        baselines={"mosquitto_pub_messages_per_s": base_rate,
                   "mosquitto_pub_runs": [r["messages_per_s"] for r in theirs]},
        ratios={"vs_mosquitto_pub": ours_rate / base_rate} if base_rate else {},
        targets={"vs_mosquitto_pub": ">= 0.5", "lost": "0"},
        notes=notes,
    )
    result.met = bool(base_rate) and ours_rate / base_rate >= 0.5
    result.notes.append(
        "callbridge time runs from the first domain event handed to the publisher to the last message "
        "received; an MQTT message is one (event, topic) pair: each event goes to its hotline topic and "
        "its call topic"
    )
    return result
