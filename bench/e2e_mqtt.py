"""Benchmark 2 — AMI → MQTT end to end, through the daemon, against ``mosquitto_pub -l``.

callbridge: an AMI stream (served by :mod:`bench.ami_server` in its own process) → ``App`` (the
composition root ``callbridge run`` uses: AmiClient → tracker → engine → bus publisher with the
durable SQLite outbox), under the daemon's GC tuning (``tune_gc``, as ``callbridge run``) → a private
mosquitto (``max_queued_messages 0``) at QoS 1 → the C subscriber ``mosquitto_sub -q 1``
(:mod:`bench.csub`, its own process, pinned beside the broker). Every message handed to the publisher
must arrive: a shortfall is an error, not a slow result.

Baseline: ``mosquitto_pub -l -q 1`` publishing the very payloads callbridge published in the round
before it (the subscriber keeps them: same count, same bytes, same order; one topic instead of the
hotline and call topics), in chunks of at most 50,000 lines, one client per chunk, all at once
(mosquitto_pub stops early after about 65,536 lines at QoS 1), counted by the same C subscriber, which
writes the payloads on both sides. Both rates are timed the same way, on the subscriber's clock: from
the first message it received to the last (``launch_*`` keeps the old clock: callbridge from its first
domain event, mosquitto_pub from its launch, which counted 0.2-1 s of process start and connect
against the baseline). Rounds alternate callbridge and the baseline; both streams are measured: the
synthetic one (:mod:`bench.amistream`) and the one built from the recorded traces
(:mod:`bench.tracestream`, real kinds and mixes, untyped events included).

Then the crash proof (:mod:`bench.e2e_kill`), on both streams: the daemon in its own process, ``kill -9``
in the middle of the run, restarted on the same outbox: every committed envelope arrives.
"""

from __future__ import annotations

import asyncio
import gc
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import amistream, tracestream
from bench.amistream import END_CALL_ID
from bench.common import REPO, BenchResult, keep_apart, median, production_logging, python_subprocess, run_async
from bench.csub import CSubCounter, binary

TIMEOUT_S = 900.0
SITE = "bench"
CHUNK = 50_000
FILTERS = [f"callbridge/{SITE}/events/#", f"callbridge/{SITE}/calls/#"]


@dataclass
class E2eRun:
    ami_events: int
    domain_events: int
    messages: int
    received: int
    avg_bytes: float
    ami_events_per_s: float
    messages_per_s: float
    #: the old clock: from the first domain event handed to the publisher to the last message received
    launch_messages_per_s: float
    #: what the subscriber received, one payload a line (the baseline publishes the same)
    payloads: Path | None = None


async def run_callbridge(ami_port: int, mqtt_port: int, workdir: Path, ami_events: int) -> E2eRun:
    """One run of the daemon over the stream on ``ami_port``; rates on the subscriber's clock."""
    from callbridge.app import App
    from callbridge.bus.topics import Topics
    from callbridge.domain import DomainEvent
    from callbridge.settings import Settings

    counter = await asyncio.to_thread(CSubCounter, mqtt_port, FILTERS, workdir, payloads=True)
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
        report = await asyncio.to_thread(counter.wait, expected)
    finally:
        counter.kill()
        await app.stop()
    first = tally["first"]
    payloads = workdir / "payloads.txt"
    counter.write_payloads(payloads)
    return E2eRun(
        ami_events=ami_events,
        domain_events=domain_events,
        messages=expected,
        received=int(report["count"]),
        avg_bytes=report["bytes"] / max(1, report["count"]),
        ami_events_per_s=ami_events / max(1e-9, fed_at - first),
        messages_per_s=subscriber_rate(report),
        launch_messages_per_s=report["count"] / max(1e-9, report["last"] - first),
        payloads=payloads,
    )


def subscriber_rate(report: dict[str, Any]) -> float:
    """Messages per second between the first and the last message the subscriber received."""
    span = float(report["last"]) - float(report["first"])
    return float(report["count"]) / max(1e-9, span)


def run_mosquitto_pub(mqtt_port: int, messages: int, size: int, workdir: Path,
                      payloads: Path | None = None) -> dict[str, Any]:
    """``mosquitto_pub -l`` of ``payloads`` (one message a line), or of ``messages`` padded lines of ``size``."""
    pub = binary("mosquitto_pub")
    topic = f"callbridge/{SITE}/events/12345/baseline"
    if payloads is not None:
        lines = [line + b"\n" for line in payloads.read_bytes().split(b"\n")[:-1]]
    else:
        lines = [('{"pad":"' + "x" * max(0, size - 10) + '"}\n').encode()] * messages
    messages = len(lines)
    files: list[Path] = []
    for i in range(math.ceil(messages / CHUNK)):
        path = workdir / f"chunk{i}.txt"
        path.write_bytes(b"".join(lines[i * CHUNK : (i + 1) * CHUNK]))
        files.append(path)
    counter = CSubCounter(mqtt_port, FILTERS, workdir, payloads=payloads is not None)
    try:
        start = time.time()
        procs = []
        for path in files:
            with path.open("rb") as src:
                procs.append(subprocess.Popen([pub, "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
                                               "-t", topic, "-l"], stdin=src))
        for proc in procs:
            proc.wait(timeout=TIMEOUT_S)
        report = counter.wait(messages)
    finally:
        counter.kill()
    report["messages_per_s"] = subscriber_rate(report)
    report["launch_messages_per_s"] = report["count"] / max(1e-9, report["last"] - start)
    return report


def measure_stream(path: Path, ami_events: int, rounds: int, loop: str, tmp: Path, broker_port: int
                   ) -> tuple[list[E2eRun], list[dict[str, Any]]]:
    """``rounds`` alternating rounds of callbridge then ``mosquitto_pub`` (same count and size)."""
    ours: list[E2eRun] = []
    theirs: list[dict[str, Any]] = []
    with python_subprocess("bench.ami_server", str(path)) as (_, port_line):
        for i in range(rounds):
            work = tmp / f"{path.stem}-run{i}"
            work.mkdir()
            gc.collect()
            with daemon_gc():
                one = run_async(run_callbridge(int(port_line), broker_port, work, ami_events), loop)
            if one.received < one.messages:
                raise RuntimeError(f"lost MQTT messages: {one.messages - one.received} of {one.messages}")
            ours.append(one)
            theirs.append(run_mosquitto_pub(broker_port, one.messages, round(one.avg_bytes), work, one.payloads))
    return ours, theirs


def daemon_gc() -> Any:
    """The collector as ``callbridge run`` tunes it (mosquitto_pub, the baseline, is C: no collector)."""
    from bench.ingest import daemon_gc as tuned

    return tuned(True)


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    from bench.e2e_kill import kill9_proof
    from callbridge.testing.mosquitto import Mosquitto

    production_logging()
    # 200k events (not 500k): the daemon path runs at a few thousand messages/s here.
    events = 15_000 if quick else 200_000
    rounds = 1 if quick else 3
    streams = {"synthetic": amistream.stream_file(events), "traces": tracestream.stream_file(events)}
    results: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    params: dict[str, Any] = {"qos": 1, "rounds": rounds, "loop": loop, "gc": "daemon tune_gc (callbridge)",
                              "outbox": "SQLite WAL (synchronous=NORMAL)", "counter": "mosquitto_sub -q 1 (C)",
                              "broker": "mosquitto, max_queued_messages 0"}  # fmt: skip
    notes: list[str] = []
    lost = 0
    with tempfile.TemporaryDirectory(prefix="cb-bench-e2e-") as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        if broker.pid is not None:
            notes.append(keep_apart(broker.pid))  # the broker beside the other servers, not on our core
        for name, (path, ami_events) in streams.items():
            ours, theirs = measure_stream(path, ami_events, rounds, loop, Path(tmp), broker.port)
            lost += sum(r.messages - r.received for r in ours)
            ours_rate = median([r.messages_per_s for r in ours])
            base_rate = median([r["messages_per_s"] for r in theirs])
            last = ours[-1]
            params[name] = {"ami_events": ami_events, "mqtt_messages": last.messages,
                            "domain_events": last.domain_events, "avg_payload_bytes": round(last.avg_bytes)}
            results[f"{name}_messages_per_s"] = ours_rate
            results[f"{name}_ami_events_per_s"] = median([r.ami_events_per_s for r in ours])
            results[f"{name}_runs"] = [r.messages_per_s for r in ours]
            baselines[f"{name}_mosquitto_pub_messages_per_s"] = base_rate
            baselines[f"{name}_mosquitto_pub_runs"] = [r["messages_per_s"] for r in theirs]
            ratios[f"{name}_vs_mosquitto_pub"] = ours_rate / base_rate
            per_round = [o.messages_per_s / t["messages_per_s"] for o, t in zip(ours, theirs, strict=True)]
            ratios[f"{name}_rounds"] = median(per_round)
            # the old clocks (callbridge from its first domain event, mosquitto_pub from its launch)
            results[f"{name}_launch_runs"] = [r.launch_messages_per_s for r in ours]
            baselines[f"{name}_mosquitto_pub_launch_runs"] = [r["launch_messages_per_s"] for r in theirs]
            ratios[f"{name}_launch_clock"] = median([o.launch_messages_per_s / t["launch_messages_per_s"]
                                                     for o, t in zip(ours, theirs, strict=True)])
        # killed a third into the run: well after start-up, well before the end; on both streams
        proofs = {name: kill9_proof(path, Path(tmp), broker.port, kill_at=params[name]["mqtt_messages"] // 3,
                                    name=f"kill9-{name}")
                  for name, (path, _) in streams.items()}  # fmt: skip
    results["lost"] = lost
    results["kill9"] = proofs["synthetic"]
    results["kill9_traces"] = proofs["traces"]
    result = BenchResult(
        name="e2e_mqtt", params=params, results=results, baselines=baselines, ratios=ratios,
        targets={"synthetic_vs_mosquitto_pub": ">= 0.8", "traces_vs_mosquitto_pub": ">= 0.8", "lost": "0",
                 "kill9.lost": "0", "kill9_traces.lost": "0"},
        notes=notes,
    )
    for name, proof in proofs.items():
        if proof["lost"]:
            raise RuntimeError(f"kill -9 ({name} stream): {proof['lost']} committed envelopes never arrived")
    result.met = all(ratios[f"{n}_vs_mosquitto_pub"] >= 0.8 for n in streams) and not lost
    result.notes.append(
        "both rates run from the first to the last message mosquitto_sub received (*_launch_*: callbridge "
        "from its first domain event, mosquitto_pub from its launch); the baseline publishes the payloads "
        "callbridge published in the round before; an MQTT message is one (event, topic) pair: each event "
        "goes to its hotline topic and its call topic; *_rounds is the median of the per-round ratios"
    )
    return result
