"""``python -m bench.overload_trace ARGS…``: ``python -m callbridge ARGS…`` under tracemalloc (the overload
benchmark's diagnostic run, ``BENCH_OVERLOAD_TRACE=1``).

On SIGUSR2 the daemon writes a tracemalloc snapshot to ``$BENCH_TRACE_DIR/snap-N.pickle`` (N = 1, 2, …),
then what held the interpreter since the previous one (:class:`Stalls`) and the small-object allocator's
arenas (:func:`arenas`) to ``snap-N.json``, then ``snap-N.done``, so the benchmark can compare the heap
before and after each flood and name what grew, how much of the RSS is arenas kept for a few live blocks,
and what kept a thread from the GIL. tracemalloc slows the daemon many times over (``BENCH_OVERLOAD_TRACE=heap``);
``stalls`` leaves it off (no ``.pickle``, the rest as above, the daemon at its own speed).
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
from itertools import count
from pathlib import Path
from types import FrameType
from typing import Any

#: Frames per traced allocation (``BENCH_TRACE_FRAMES``): each one more slows the daemon further.
FRAMES = int(os.environ.get("BENCH_TRACE_FRAMES", "2"))
#: A thread waiting this much longer than it asked for is a stall worth naming (seconds).
STALL_S = 0.02
_numbers = count(1)


class Stalls:
    """Collector runs (per generation: count, total and longest) and GIL stalls: a thread that sleeps 1 ms
    and, when it wakes late, records by how much, the process CPU time spent meanwhile (≈ the lag: the
    process ran, someone held the GIL; ≪ the lag: the machine did not give it a core) and where the main
    thread was when the thread got the GIL back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self._gc_start = 0.0
        gc.callbacks.append(self._gc)
        threading.Thread(target=self._watch, name="stall-watch", daemon=True).start()

    def reset(self) -> None:
        self.gc: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
        self.stalls: list[dict[str, Any]] = []

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_start
        entry = self.gc[info["generation"]]
        entry[0] += 1
        entry[1] += took
        entry[2] = max(entry[2], took)

    def _watch(self) -> None:
        main = threading.main_thread().ident
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            time.sleep(0.001)
            lag = time.perf_counter() - t0 - 0.001
            if lag < STALL_S:
                continue
            cpu = time.process_time() - c0
            frame = sys._current_frames().get(main or 0)  # noqa: SLF001 - documented; a diagnostic
            where = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                     for f in traceback.extract_stack(frame)[-5:]] if frame else []  # fmt: skip
            with self.lock:
                self.stalls.append({"lag_ms": round(lag * 1000, 1), "cpu_ms": round(cpu * 1000, 1), "main": where})

    def take(self) -> dict[str, Any]:
        with self.lock:
            stalls = sorted(self.stalls, key=lambda s: -s["lag_ms"])
            doc = {"gc": {str(g): {"runs": int(n), "total_ms": round(t * 1000, 1), "max_ms": round(m * 1000, 1)}
                          for g, (n, t, m) in self.gc.items()},
                   "stalls": len(stalls), "stall_ms_total": round(sum(s["lag_ms"] for s in stalls), 1),
                   "worst": stalls[:8]}  # fmt: skip
            self.reset()
        return doc


def arenas() -> dict[str, int]:
    """pymalloc's own account (``sys._debugmallocstats``, which writes to fd 2): arenas allocated now and
    at most, bytes in blocks in use and free within them."""
    with tempfile.TemporaryFile() as text:
        saved = os.dup(2)
        os.dup2(text.fileno(), 2)
        try:
            sys._debugmallocstats()  # noqa: SLF001 - documented; a diagnostic
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        text.seek(0)
        found = dict(re.findall(r"^# ([a-z ]+?)\s*=\s*([\d,]+)$", text.read().decode(errors="replace"), re.M))
    wanted = ("arenas allocated current", "arenas highwater mark", "bytes in allocated blocks",
              "bytes in available blocks", "bytes in arenas" if "bytes in arenas" in found else "")  # fmt: skip
    return {k.replace(" ", "_"): int(found[k].replace(",", "")) for k in wanted if k in found}


def _dump(stalls: Stalls) -> None:
    out = Path(os.environ["BENCH_TRACE_DIR"])
    n = next(_numbers)
    doc = stalls.take()
    gc.collect()  # what is only garbage is not a grower
    doc["pymalloc"] = arenas()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(out / f"snap-{n}.pickle"))
    (out / f"snap-{n}.json").write_text(json.dumps(doc), encoding="utf-8")
    (out / f"snap-{n}.done").write_text("", encoding="utf-8")


def main() -> int:
    if os.environ.get("BENCH_OVERLOAD_TRACE") == "heap":
        tracemalloc.start(FRAMES)
    stalls = Stalls()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        _dump(stalls)

    signal.signal(signal.SIGUSR2, on_signal)
    from callbridge.cli import main as callbridge_main  # after tracemalloc started: all traced

    return callbridge_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
