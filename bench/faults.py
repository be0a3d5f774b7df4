"""Benchmark — faults (issue 17): the broker SIGKILLed while events flow and a persistent subscriber is
offline; AMI cuts during each transfer kind. Counts, not rates: produced, delivered, duplicated, lost,
executed twice, how each cut transfer settled, and the RSS before and after.

The scenarios are the tests' own (``callbridge/bus/outage_drill.py`` for
``tests/bus/test_bus_broker_crash.py``, ``callbridge/testing/transfer_cuts.py`` on the lab of
``callbridge/testing/lab.py`` for ``tests/e2e/test_e2e_transfer_cuts.py``), run longer here: a 60 s outage
and 100 cuts of each transfer kind (the issue's figures; ``--quick``: 5 s and 3 cuts). Real parts: mosquitto
with its on-disk store, callbridge's publisher and durable outbox, the PBX simulator over TCP AMI and the
whole ``App``. Failed (exit 1) when an event is lost or an action ran twice.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.common import BenchResult, production_logging, rss_bytes, run_async
from callbridge.bus.config import BusSettings
from callbridge.bus.outage_drill import USERS, DeskLog, desk_returns, kill9_outage, persistent_broker
from callbridge.bus.publisher import Publisher
from callbridge.domain import DomainEvent
from callbridge.testing.lab import open_lab
from callbridge.testing.transfer_cuts import KINDS, run_cuts

CALLS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultTick(DomainEvent):
    """The benchmark's numbered event (outside ``callbridge``: never part of the published schema)."""

    TYPE: ClassVar[str] = "bench.fault_tick"
    n: int = 0


def ticks(start: int, size: int) -> list[FaultTick]:
    return [FaultTick(ts=time.time(), call_id=f"call-{n % CALLS}", hotline="12345", n=n)
            for n in range(start, start + size)]  # fmt: skip


async def broker_outage(workdir: Path, outage_s: float) -> dict[str, Any]:
    desk = DeskLog()
    with persistent_broker(workdir / "broker") as broker:
        settings = BusSettings.model_validate({
            "host": broker.host, "port": broker.port, "site": "lab", "outbox_path": workdir / "outbox.sqlite3",
            "reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "keepalive": 5, "username": "pub",
            "password": USERS["pub"]})  # fmt: skip
        pub = Publisher(settings)
        task = asyncio.create_task(pub.run())
        rss_before = rss_bytes()
        try:
            async with asyncio.timeout(10):
                await pub.wait_connected()
            figures = await kill9_outage(broker, pub, desk, ticks, outage_s=outage_s)
        finally:
            pub.stop(drain_timeout=0.5)
            async with asyncio.timeout(10):
                await task
            pub.outbox.close()
        await desk_returns(broker, desk, figures["produced"])
    ns = [c["data"]["n"] for c in desk.copies]
    produced = figures["produced"]
    return {"outage_s": outage_s, "produced": produced, "delivered": len(set(ns)),
            "lost": len(set(range(produced)) - set(ns)), "duplicated": len(ns) - len(set(ns)),
            "in_flight_at_kill": figures["in_flight_at_kill"], "outbox_while_down": figures["outbox_while_down"],
            "publisher_connections": figures["reconnections"],
            "rss_before_kib": rss_before // 1024, "rss_after_kib": rss_bytes() // 1024}  # fmt: skip


async def cuts_of(workdir: Path, kind: str, cuts: int) -> dict[str, Any]:
    async with open_lab(workdir) as lab:
        rss_before = rss_bytes()
        outcomes, trap = await run_cuts(lab, kind, cuts)
        rss_after = rss_bytes()
    return {"cuts": cuts, "outcomes": dict(sorted(outcomes.items())), "actions_executed": sum(trap.seen.values()),
            "executed_twice": len(trap.twice()), "rss_before_kib": rss_before // 1024,
            "rss_after_kib": rss_after // 1024}  # fmt: skip


async def scenarios(outage_s: float, cuts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cb-bench-faults-") as tmp:
        out: dict[str, Any] = {"broker_kill9": await broker_outage(Path(tmp) / "broker", outage_s)}
        for kind in KINDS:
            (Path(tmp) / kind).mkdir()
            out[f"cuts_{kind}"] = await cuts_of(Path(tmp) / kind, kind, cuts)
    return out


def run(quick: bool = False, duration: float | None = None, loop: str = "uvloop") -> BenchResult:
    production_logging()
    outage_s = 5.0 if quick else (duration or 60.0)
    cuts = 3 if quick else 100
    results = run_async(scenarios(outage_s, cuts), loop)
    broker = results["broker_kill9"]
    twice = sum(v["executed_twice"] for k, v in results.items() if k.startswith("cuts_"))
    result = BenchResult(
        name="faults",
        params={"outage_s": outage_s, "cuts_per_kind": cuts, "kinds": list(KINDS), "quick": quick,
                "broker": "mosquitto, persistence + autosave_on_changes", "subscriber": "MQTT 5, clean_start false"},
        results=results,
        targets={"lost": "0", "executed_twice": "0"},
        notes=["a duplicate is the same envelope (same id) delivered twice: QoS 1 is at least once",
               "outcomes: moment of the cut (before: with the action; after: its reply lost; later) : the state "
               "the transfer settled in (consulting only while the PBX has the consultation)"],
    )
    result.met = broker["lost"] == 0 and twice == 0
    if broker["lost"] or twice:
        raise RuntimeError(f"faults: {broker['lost']} events lost, {twice} actions executed twice")
    return result
