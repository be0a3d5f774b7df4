"""What every benchmark shares: the result record, machine facts, tables, JSON output, subprocesses.

Absolute rates drift between machines, so every result carries the baselines measured in the same
invocation and the ratios to them; ``met`` is judged on the ratio where the target is a ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


@dataclass
class BenchResult:
    """One benchmark's outcome, written as JSON to ``bench/results/<name>.json``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    met: bool = False
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    elapsed_s: float = 0.0


def machine_info() -> dict[str, Any]:
    model = ""
    mhz = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and not mhz:
                mhz = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        loop = "uvloop " + __import__("uvloop").__version__
    except ImportError:
        loop = "asyncio"
    return {
        "cpu": model,
        "cpu_mhz": mhz,
        "cores": os.cpu_count(),
        "mem_mib": mem_kib // 1024,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "loop_available": loop,
    }


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def write_result(result: BenchResult, directory: Path = RESULTS_DIR) -> Path:
    """``NAME.json`` for a full run (what bench/README.md reports), ``NAME.quick.json`` for ``--quick``."""
    directory.mkdir(parents=True, exist_ok=True)
    result.machine = result.machine or machine_info()
    suffix = ".quick" if result.params.get("quick") else ""
    path = directory / f"{result.name}{suffix}.json"
    text = json.dumps(asdict(result), indent=2, ensure_ascii=False, sort_keys=False)
    # Refuse to write something a reader could not load back (NaN/inf sneak in from divisions).
    json.loads(text, parse_constant=_refuse_constant)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"benchmark result contains {name}")


def print_table(result: BenchResult) -> None:
    """A rich table when rich is importable (it is a dependency), plain lines otherwise."""
    rows: list[tuple[str, str]] = []
    for section in ("results", "baselines", "ratios"):
        for key, value in getattr(result, section).items():
            rows.append((f"{section}.{key}", _fmt(value)))
    for key, value in result.targets.items():
        rows.append((f"target.{key}", value))
    rows.append(("met", str(result.met)))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        print(f"== {result.name}")
        for key, value in rows:
            print(f"  {key:40s} {value}")
        return
    table = Table(title=f"{result.name}  ({_fmt(result.params)})", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    Console(width=140).print(table)
    for note in result.notes:
        print(f"  note: {note}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


# The CPUs this process may use before keep_apart narrows them (read once, at import).
_ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def keep_apart(pid: int) -> str:
    """Run process ``pid`` (a server: AMI stream, simulator, broker) on the last CPU, this process on the others.

    Without it the scheduler may put a server on the measured process's core whenever it wakes (every
    write to it), and the measurement then includes the server's work: on 2 cores that showed up as
    multi-millisecond p99s in the latency benchmark. Linux only; elsewhere (or on one CPU) a no-op.
    Returns a note for the result.
    """
    if not hasattr(os, "sched_setaffinity"):
        return "no CPU pinning (not Linux)"
    cpus = _ALL_CPUS
    if len(cpus) < 2:
        return "no CPU pinning (one CPU)"
    with contextlib.suppress(ProcessLookupError):
        os.sched_setaffinity(pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"servers pinned to CPU {cpus[-1]}, the measured process to CPU {','.join(map(str, cpus[:-1]))}"


@contextmanager
def python_subprocess(
    module: str, *args: str, ready_timeout: float = 30.0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``python -m module args`` and wait for its first stdout line (its "ready" report, e.g. a port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    keep_apart(proc.pid)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + ready_timeout
        line = proc.stdout.readline().strip()
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"{module} did not report ready (exit {proc.poll()})")
        yield proc, line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def run_async(main: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """Run a coroutine on uvloop (what the daemon runs on) or on the stock asyncio loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return float(ordered[idx])


def production_logging() -> None:
    """Log as the daemon does in production (JSON, INFO): debug lines of the hot path cost nothing."""
    from callbridge.log import configure_logging

    configure_logging(format="json", level="info", stream=sys.stderr)


class SimHost:
    """``python -m bench.sim_host`` as a child process, driven one command line at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sim_host"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        keep_apart(self.proc.pid)
        hello = self._read()
        self.port: int = hello["port"]
        self.user: str = hello["user"]
        self.secret: str = hello["secret"]
        self.dialplans = Path(hello["dialplans"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator host exited ({self.proc.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    async def acommand(self, line: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.command, line)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.command("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> SimHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
