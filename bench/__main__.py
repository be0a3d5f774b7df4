"""``python -m bench [--quick] [--only NAME] [--duration S] [--loop uvloop|asyncio] [--results DIR]``.

Runs the benchmarks one after the other, prints a table for each and writes ``bench/results/NAME.json``
(``NAME.quick.json`` with ``--quick``, so CI never overwrites the full run the README reports).
Exit status 1 when a benchmark *failed* (an error, lost messages, invalid output) — never because a
target was missed: CI runs ``--quick`` to keep the benchmarks working, not to judge the machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS_DIR, BenchResult, machine_info, print_table, write_result
from callbridge.hugepages import huge_arena_stats, use_huge_arenas

BENCHMARKS = ("ingest", "e2e_mqtt", "latency", "memory", "resync", "soak", "scaling")
#: Run only when asked for with --only (console_pop: a browser is needed; overload, faults: minutes each).
ON_REQUEST = ("console_pop", "overload", "faults")


def huge_arena_state() -> str:
    stats = huge_arena_stats()
    return "huge-page arenas (callbridge/hugepages.py)" if stats.get("installed") else "pymalloc's own arenas"


def run_one(name: str, quick: bool, duration: float | None, loop: str) -> BenchResult:
    module = importlib.import_module(f"bench.{name}")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    result: BenchResult = module.run(quick=quick, duration=duration, loop=loop)
    result.started_at = started
    result.elapsed_s = round(time.perf_counter() - t0, 2)
    result.params.setdefault("quick", quick)
    result.params.setdefault("arenas", huge_arena_state())
    result.machine = machine_info()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI: under two minutes in total)")
    parser.add_argument("--only", action="append", choices=(*BENCHMARKS, *ON_REQUEST),
                        help="run only this one (repeatable)")
    parser.add_argument("--duration", type=float, default=None, help="soak duration in seconds")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes (bench/results)")
    args = parser.parse_args(argv)
    # As the daemon does (callbridge run), before anything is allocated; in this process, so every client of a
    # comparison (callbridge and its baselines alike) runs on the same allocator.
    arenas = use_huge_arenas()
    print(f"bench: huge-page arenas {arenas}", flush=True)
    failed: list[str] = []
    for name in args.only or BENCHMARKS:
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        try:
            result = run_one(name, args.quick, args.duration, args.loop)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        path = write_result(result, args.results)
        print_table(result)
        print(f"   -> {path} ({result.elapsed_s} s)", flush=True)
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
