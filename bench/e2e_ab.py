"""Before/after of the AMI → MQTT path in the same minutes: ``python -m bench.e2e_ab BEFORE AFTER``.

Two git refs are exported (``git archive``) into a temporary directory each, with the C framing loop
as built in this checkout copied into both (refused when the refs' ``_fastframe.c`` differ: one build
must suit both).
Each round runs :func:`bench.e2e_mqtt.run_callbridge` of this checkout once per tree, each in a fresh
process (``PYTHONPATH`` = that tree, under the daemon's GC tuning), the order alternating, then
``mosquitto_pub`` on the payloads the *after* tree published; one broker, one C subscriber per run,
the same pinning for all (servers on the last CPU, the measured process on the others). Reported per
round and as medians: rates on the subscriber's clock, the launch clocks, and the CPU time each
daemon process took (less sensitive to a busy machine than a rate, though not immune to it).

``--streams traces,synthetic --events 200000 --rounds 5`` are the defaults; ``--json PATH`` keeps it all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import amistream, tracestream
from bench.common import REPO, keep_apart, python_subprocess
from bench.e2e_mqtt import run_mosquitto_pub

FAST = "callbridge/ami/fast"
_ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def export(ref: str, dest: Path) -> Path:
    """``ref``'s tree in ``dest`` with this checkout's bench harness and built C loop."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for built in (REPO / FAST).glob("_fastframe*.so"):
        shutil.copy2(built, dest / FAST)
    for name in ("e2e_mqtt.py", "csub.py", "e2e_ab.py"):
        shutil.copy2(REPO / "bench" / name, dest / "bench" / name)
    return dest


def one_round(tree: Path, stream: Path, events: int, ami_port: int, mqtt_port: int, work: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, "-m", "bench.e2e_ab", "--child", str(stream), str(events), str(ami_port), str(mqtt_port),
            str(work)]  # fmt: skip
    done = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=1800,
                          preexec_fn=lambda: os.sched_setaffinity(0, set(_ALL_CPUS)))  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"round in {tree} failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if report["received"] < report["messages"]:
        raise RuntimeError(f"lost MQTT messages in {tree}: {report}")
    return report


def child(stream: str, events: int, ami_port: int, mqtt_port: int, work: Path) -> None:
    import gc

    import callbridge
    from bench.common import production_logging, run_async
    from bench.e2e_mqtt import daemon_gc, run_callbridge

    production_logging()
    work.mkdir(parents=True)
    gc.collect()
    cpu = time.process_time()
    with daemon_gc():
        run = run_async(run_callbridge(ami_port, mqtt_port, work, events), "uvloop")
    print(json.dumps({"tree": callbridge.__file__, "rate": run.messages_per_s, "launch_rate": run.launch_messages_per_s,
                      "ami_rate": run.ami_events_per_s, "messages": run.messages, "received": run.received,
                      "payloads": str(run.payloads), "cpu_s": time.process_time() - cpu}))  # fmt: skip


def compare(before: str, after: str, streams: list[str], events: int, rounds: int) -> dict[str, Any]:
    from callbridge.testing.mosquitto import Mosquitto

    out: dict[str, Any] = {"before": before, "after": after, "events": events, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="cb-bench-ab-") as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        if broker.pid is not None:
            keep_apart(broker.pid)
        trees = {"before": export(before, Path(tmp) / "before"), "after": export(after, Path(tmp) / "after")}
        if len({(t / FAST / "_fastframe.c").read_bytes() for t in trees.values()}) > 1:
            raise SystemExit(f"{before} and {after} differ in {FAST}/_fastframe.c: one built C loop cannot serve both")
        for name in streams:
            path, count = (tracestream if name == "traces" else amistream).stream_file(events)
            rows = []
            with python_subprocess("bench.ami_server", str(path)) as (_, port):
                for i in range(rounds):
                    runs = {}
                    for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
                        runs[side] = one_round(trees[side], path, count, int(port), broker.port,
                                               Path(tmp) / f"{name}-{side}-{i}")  # fmt: skip
                    work = Path(tmp) / f"{name}-pub-{i}"
                    work.mkdir()
                    pub = run_mosquitto_pub(broker.port, 0, 0, work, Path(runs["after"]["payloads"]))
                    row = {"at": time.strftime("%H:%M:%S"), "load": os.getloadavg()[0], "pub": pub["messages_per_s"],
                           "pub_launch": pub["launch_messages_per_s"], **{f"{s}_{k}": r[k] for s, r in runs.items()
                           for k in ("rate", "launch_rate", "ami_rate", "messages", "cpu_s")}}  # fmt: skip
                    print(name, json.dumps(row), flush=True)
                    rows.append(row)
            out[name] = {"rounds": rows, "median": medians(rows)}
            print(name, "median", json.dumps(out[name]["median"]), flush=True)
    return out


def medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in rows[0] if k != "at"]
    med = {k: float(statistics.median(r[k] for r in rows)) for k in keys}
    for side in ("before", "after"):
        med[f"{side}_vs_mosquitto_pub"] = float(statistics.median(r[f"{side}_rate"] / r["pub"] for r in rows))
    med["cpu_after_over_before"] = float(statistics.median(r["after_cpu_s"] / r["before_cpu_s"] for r in rows))
    return med


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        stream, events, ami_port, mqtt_port, work = sys.argv[2:7]
        child(stream, int(events), int(ami_port), int(mqtt_port), Path(work))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--streams", default="traces,synthetic")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = compare(args.before, args.after, args.streams.split(","), args.events, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
