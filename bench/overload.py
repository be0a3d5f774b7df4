"""Benchmark — overload (issue 17.5): three AMI floods against a real ``callbridge run``.

Real parts: ``python -m callbridge run`` (records, web, bus: what production runs) against the flood
server (:mod:`bench.flood_server`, its own process: whole calls at a set rate, TCP back-pressure when the
daemon reads slower) and a real mosquitto. The daemon runs on the first CPU(s); the servers and this
prober on the last one, so the probes measure the daemon, not a fight with the prober.

Per flood: RSS of the daemon sampled every 0.25 s before, during and after; ``/healthz`` and ``/readyz``
asked every 50 ms on a new connection (as an orchestrator asks), their latency reported as p50/p99/max;
after the flood the daemon settles (``SETTLE_S``) and the RSS at its end is "after". The shed counters
(``/metrics``: records dropped, AMI reads paused, outbox drops) are read after each flood.

"Before" is the level after a warm-up flood (``WARMUP_S``, 15 s; quick: 2 s) and its settle: what is bounded by
design fills there (tombstones, the framing value cache, the board's recent calls); the cold level of the
fresh process is reported beside it.

Targets (issue 17.5): after each flood RSS within 20 % of its level before the first flood, no ratchet
over the three floods (flood 3's after ≤ flood 1's after + 5 %), probes answered within 50 ms (max) during
a flood.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO, BenchResult, percentile
from callbridge.testing.mosquitto import Mosquitto
from callbridge.testing.ports import free_port

#: The rate the issue measured (AMI events/s) and the flood length.
RATE = float(os.environ.get("BENCH_OVERLOAD_RATE", "17700"))
FLOOD_S = 40.0
SETTLE_S = 20.0
#: The warm-up flood: long enough to fill what is bounded by design (the tracker's 16,384 tombstones take
#: ~8,000 calls, 15 s at RATE; the 5 s of before left two thirds of them to the first measured flood).
WARMUP_S = float(os.environ.get("BENCH_OVERLOAD_WARMUP_S", "15"))
#: Floods after the warm-up (issue 17.5: at least three, to see a ratchet).
FLOODS = int(os.environ.get("BENCH_OVERLOAD_FLOODS", "3"))
#: The diagnostic runs (:mod:`bench.overload_trace`), by ``BENCH_OVERLOAD_TRACE``: ``stalls`` — per flood, the
#: interpreter's stalls (collector runs, GIL waits and where the main thread was) and pymalloc's arenas;
#: ``heap`` — that, and the daemon under tracemalloc: a heap snapshot after the warm-up and after each
#: flood's settle, the top growers reported (a much slower daemon: its figures are not the benchmark's).
TRACE = os.environ.get("BENCH_OVERLOAD_TRACE", "")
TOKEN = "bench-overload-token"
#: The probe path that stands for the control responder in the samples.
CONTROL = "control"
SECRET = "bench"
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(pid: int, cpus: list[int]) -> None:
    if hasattr(os, "sched_setaffinity") and len(CPUS) > 1:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, set(cpus))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, float]:
    """One GET on a new connection: status, body, seconds from connect to the last byte."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body, time.perf_counter() - t0
    finally:
        conn.close()


@dataclass
class Samples:
    """What the sampler thread saw: (t, rss KiB) and (t, path, seconds, status)."""

    rss: list[tuple[float, int]] = field(default_factory=list)
    probes: list[tuple[float, str, float, int]] = field(default_factory=list)


class Sampler:
    """RSS every 0.25 s; ``/healthz``, ``/readyz`` and the control (:mod:`bench.probe_control`, on the
    daemon's core) in turn, one every 33 ms (each every 100 ms)."""

    def __init__(self, pid: int, web_port: int, control_port: int | None = None) -> None:
        self.pid, self.web_port, self.control_port = pid, web_port, control_port
        self.samples = Samples()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._rss, self._probe)]
        for t in self._threads:
            t.start()

    def _rss(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(OSError, ValueError):
                self.samples.rss.append((time.monotonic(), rss_kib(self.pid)))

    def _probe(self) -> None:
        paths = ("/healthz", "/readyz", CONTROL) if self.control_port else ("/healthz", "/readyz")
        i = 0
        while not self._stop.wait(0.1 / len(paths)):
            path = paths[i % len(paths)]
            i += 1
            try:
                port = self.control_port if path == CONTROL and self.control_port else self.web_port
                status, _, took = get(port, "/healthz" if path == CONTROL else path)
            except OSError:
                status, took = 0, 10.0
            self.samples.probes.append((time.monotonic(), path, took, status))

    def stop(self) -> Samples:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        return self.samples


class Control:
    """The control responder's process (:mod:`bench.probe_control`)."""

    def __init__(self, cpus: list[int]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.probe_control"], cwd=REPO, stdout=subprocess.PIPE,
                                     text=True)  # fmt: skip
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        pin(self.proc.pid, cpus)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def latency_ms(probes: list[tuple[float, str, float, int]], path: str, start: float, end: float) -> dict[str, float]:
    values = [took * 1000 for t, p, took, _ in probes if p == path and start <= t <= end]
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2)}


def rss_between(rss: list[tuple[float, int]], start: float, end: float) -> list[int]:
    return [kib for t, kib in rss if start <= t <= end]


def metrics(port: int) -> dict[str, float]:
    """The shed-related counters of ``/metrics`` (name → value)."""
    _, body, _ = get(port, "/metrics")
    wanted = ("callbridge_records_", "callbridge_ami_", "callbridge_outbox")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith(wanted) and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def settings_text(tmp: Path, ami_port: int, mqtt_port: int, web_port: int) -> str:
    return (
        f"site_id: bench\nami: {{host: 127.0.0.1, port: {ami_port}, auth: plain}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {mqtt_port}, site: bench, outbox_path: {tmp / 'outbox.sqlite3'}}}\n"
        f"dialplan: {{path: {REPO / 'dialplans'}}}\nlog: {{format: json, level: info}}\n"
        f"web: {{host: 127.0.0.1, port: {web_port}}}\nstore: {{path: {tmp / 'records.sqlite3'}}}\n"
    )


class Flooder:
    """The flood server process, driven over stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.flood_server"], cwd=REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def flood(self, rate: float, seconds: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"flood {rate} {seconds}\n")
        self.proc.stdin.flush()
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return report

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"callbridge run exited ({proc.returncode})")
        with contextlib.suppress(OSError):
            if get(port, "/readyz", 2)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("callbridge run never became ready")


def ready_doc(port: int) -> dict[str, Any]:
    """``/readyz``'s document (the AMI intake's counters are in it)."""
    _, body, _ = get(port, "/readyz")
    doc: dict[str, Any] = json.loads(body)
    return doc


def consumed(port: int) -> int:
    """AMI items the daemon's consumer has taken so far (``/readyz`` → ``ami_intake.consumed``)."""
    intake = ready_doc(port).get("ami_intake") or {}
    return int(intake.get("consumed", 0))


class Tracer:
    """The traced daemon's snapshots (:mod:`bench.overload_trace`): SIGUSR2, then wait for the files."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.taken = 0

    def snapshot(self, pid: int, timeout: float = 180.0) -> tuple[Path, dict[str, Any]]:
        """The heap snapshot's path (written only under ``heap``) and the interpreter's account."""
        self.taken += 1
        done = self.dir / f"snap-{self.taken}.done"
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while not done.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the traced daemon wrote no snapshot")
            time.sleep(0.2)
        doc: dict[str, Any] = json.loads((self.dir / f"snap-{self.taken}.json").read_text(encoding="utf-8"))
        return self.dir / f"snap-{self.taken}.pickle", doc


def top_growers(before: Path, after: Path, limit: int = 12) -> dict[str, Any]:
    """What the heap holds more of after than before: by line, and the largest by call stack."""
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib.*"),
              tracemalloc.Filter(False, "<unknown>"))  # fmt: skip
    old = tracemalloc.Snapshot.load(str(before)).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(str(after)).filter_traces(ignore)

    def short(frame: tracemalloc.Frame) -> str:
        return f"{frame.filename.rsplit('site-packages/', 1)[-1].rsplit(str(REPO) + '/', 1)[-1]}:{frame.lineno}"

    by_line = [s for s in new.compare_to(old, "lineno") if s.size_diff > 0][:limit]
    by_stack = [s for s in new.compare_to(old, "traceback") if s.size_diff > 0][:5]
    total = sum(s.size_diff for s in new.compare_to(old, "filename"))
    return {
        "traced_diff_kib": round(total / 1024, 1),
        "by_line": [{"kib": round(s.size_diff / 1024, 1), "blocks": s.count_diff, "at": short(s.traceback[0])}
                    for s in by_line],
        "by_stack": [{"kib": round(s.size_diff / 1024, 1), "blocks": s.count_diff,
                      "stack": [short(f) for f in list(s.traceback)[-8:]]} for s in by_stack],
    }  # fmt: skip


def one_flood(sampler: Sampler, flooder: Flooder, web: int, *, rate: float, seconds: float,
              settle: float) -> dict[str, Any]:  # fmt: skip
    """One flood and its settle: RSS before/during/after, the probes during it, what was offered, taken, shed."""
    taken_before, shed_before = consumed(web), metrics(web).get("callbridge_records_dropped_total", 0.0)
    t0 = time.monotonic()
    sent = flooder.flood(rate, seconds)
    t1 = time.monotonic()
    taken_by_end = consumed(web)
    time.sleep(settle)
    t2 = time.monotonic()
    s = sampler.samples
    before = rss_between(s.rss, t0 - 1.5, t0)
    during = rss_between(s.rss, t0, t1)
    after = rss_between(s.rss, t2 - 1.0, t2)
    shown = metrics(web)
    return {
        "sent": sent, "load_avg": os.getloadavg()[0],
        "events": {"offered": sent["events"], "processed_by_flood_end": taken_by_end - taken_before,
                   "processed": consumed(web) - taken_before,
                   "records_shed": shown.get("callbridge_records_dropped_total", 0.0) - shed_before},
        "rss_before_kib": before[-1] if before else 0, "rss_max_during_kib": max(during, default=0),
        "rss_after_kib": after[-1] if after else 0,
        "healthz_ms": latency_ms(s.probes, "/healthz", t0, t1),
        "readyz_ms": latency_ms(s.probes, "/readyz", t0, t1),
        "control_ms": latency_ms(s.probes, CONTROL, t0, t1),
        "probe_failures": sum(1 for t, _, _, st in s.probes if t0 <= t <= t1 and st not in (200, 503)),
        "metrics": shown,
    }  # fmt: skip


def flood_rounds(daemon: subprocess.Popen[bytes], flooder: Flooder, web: int, *, floods: int, rate: float,
                 seconds: float, settle: float, warmup: float, tracer: Tracer | None = None,
                 control: int | None = None) -> tuple[list[dict[str, Any]], int, Samples]:  # fmt: skip
    sampler = Sampler(daemon.pid, web, control)
    time.sleep(min(5.0, settle))  # idle: the cold level, and idle probe latency
    idle_end = time.monotonic()
    rounds: list[dict[str, Any]] = []
    try:
        # Warm-up: a short flood fills what is bounded by design and fills within minutes of a busy day
        # anyway (tombstones, value cache, recent finished calls); "before" is measured after it.
        flooder.flood(rate, warmup)
        time.sleep(settle)
        first = tracer.snapshot(daemon.pid)[0] if tracer else None
        for i in range(floods):
            rounds.append({"flood": i + 1, **one_flood(sampler, flooder, web, rate=rate, seconds=seconds,
                                                      settle=settle)})  # fmt: skip
            if tracer is not None:
                snap, held = tracer.snapshot(daemon.pid)
                growers = top_growers(first, snap) if first and first.exists() and snap.exists() else None
                rounds[-1]["trace"] = {"growers_since_before": growers, "interpreter": held}
            print(f"   flood {i + 1}: {json.dumps(rounds[-1], ensure_ascii=False)}", flush=True)
    finally:
        samples = sampler.stop()
    idle_rss = rss_between(samples.rss, 0, idle_end)
    return rounds, (idle_rss[-1] if idle_rss else 0), samples


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    seconds = 5.0 if quick else (duration or FLOOD_S)
    settle = 6.0 if quick else SETTLE_S
    daemon_cpus, server_cpus = (CPUS[:-1], CPUS[-1:]) if len(CPUS) > 1 else (CPUS, CPUS)
    with tempfile.TemporaryDirectory(prefix="cb-bench-overload-") as tmp_name, \
            Mosquitto(Path(tmp_name) / "broker") as broker:  # fmt: skip
        tmp = Path(tmp_name)
        if broker.pid is not None:
            pin(broker.pid, server_cpus)
        pin(os.getpid(), server_cpus)
        flooder = Flooder()
        pin(flooder.proc.pid, server_cpus)
        web = free_port()
        config = tmp / "callbridge.yaml"
        config.write_text(settings_text(tmp, flooder.port, broker.port, web), encoding="utf-8")
        env = {**os.environ, "CALLBRIDGE_AMI_SECRET": SECRET, "CALLBRIDGE_WEB_TOKEN": TOKEN, "PYTHONPATH": str(REPO),
               "BENCH_TRACE_DIR": str(tmp / "trace")}  # fmt: skip
        tracer = Tracer(tmp / "trace") if TRACE in ("heap", "stalls") else None
        entry = "bench.overload_trace" if tracer else "callbridge"
        with (tmp / "daemon.log").open("wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", entry, "run", "--config", str(config)],
                                      cwd=tmp, env=env, stdout=log, stderr=log)
        pin(daemon.pid, daemon_cpus)
        control = Control(daemon_cpus)
        try:
            wait_ready(web, daemon)
            rounds, idle_rss, samples = flood_rounds(daemon, flooder, web, floods=FLOODS, rate=RATE, seconds=seconds,
                                                     settle=settle, warmup=2.0 if quick else WARMUP_S, tracer=tracer,
                                                     control=control.port)  # fmt: skip
            idle_start = samples.rss[0][0] if samples.rss else 0.0
            idle = {p: latency_ms(samples.probes, p, idle_start, idle_start + 5)
                    for p in ("/healthz", "/readyz", CONTROL)}  # fmt: skip
            alive = daemon.poll() is None
        except Exception:
            lines = (tmp / "daemon.log").read_text(errors="replace").splitlines()
            print("\n".join(["   daemon log (last lines):", *lines[-15:]]), file=sys.stderr)
            raise
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=5)
            flooder.close()
            control.close()
    return summarise(rounds, idle_rss, idle, alive=alive, rate=RATE, seconds=seconds, settle=settle, quick=quick)


def summarise(rounds: list[dict[str, Any]], idle_rss: int, idle: dict[str, Any], *, alive: bool, rate: float,
              seconds: float, settle: float, quick: bool) -> BenchResult:
    base = rounds[0]["rss_before_kib"] or idle_rss  # after the warm-up flood
    afters = [r["rss_after_kib"] for r in rounds]
    ratchet = [round(b / a, 3) if a else 0.0 for a, b in zip([base, *afters], afters, strict=False)]
    worst_probe = max(max(r["healthz_ms"].get("max", 0), r["readyz_ms"].get("max", 0)) for r in rounds)
    result = BenchResult(
        name="overload",
        params={"rate_events_per_s": rate, "flood_s": seconds, "settle_s": settle, "floods": len(rounds),
                "daemon": "python -m callbridge run (records, web, bus)", "quick": quick, "traced": TRACE,
                "warmup_s": 2.0 if quick else WARMUP_S},
        results={
            "rss_cold_kib": idle_rss, "rss_before_kib": base, "rss_after_kib": afters,
            "rss_max_during_kib": [r["rss_max_during_kib"] for r in rounds],
            "after_vs_before": [round(a / base, 3) for a in afters] if base else [],
            "after_vs_previous_after": ratchet,  # per flood: the first against "before", then flood over flood
            "healthz_ms": [r["healthz_ms"] for r in rounds], "readyz_ms": [r["readyz_ms"] for r in rounds],
            "events": [r["events"] for r in rounds], "load_avg": [r["load_avg"] for r in rounds],
            "sent": [r["sent"] for r in rounds], "metrics": [r["metrics"] for r in rounds],
            "probe_failures": sum(r["probe_failures"] for r in rounds), "daemon_alive": alive,
        },
        baselines={"idle_healthz_ms": idle["/healthz"], "idle_readyz_ms": idle["/readyz"],
                   "idle_control_ms": idle[CONTROL],
                   "control_ms_during_floods": [r["control_ms"] for r in rounds]},  # the machine, same instants
        ratios={"rss_after_max_vs_before": round(max(afters) / base, 3) if base else 0.0,
                "rss_last_vs_first_after": round(afters[-1] / afters[0], 3) if afters[0] else 0.0},
        targets={"rss_after_max_vs_before": "<= 1.2", "rss_last_vs_first_after": "<= 1.05",
                 "probe_max_ms_during_flood": "<= 50"},
    )
    result.results["probe_max_ms_during_flood"] = worst_probe
    result.met = (alive and bool(base) and max(afters) <= 1.2 * base and afters[-1] <= 1.05 * afters[0]
                  and worst_probe <= 50)
    if not alive:
        raise RuntimeError("callbridge run died during the floods")
    return result
