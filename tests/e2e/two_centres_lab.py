"""Two centres end to end (issue 21): two simulated PBXs joined by the inter-centre trunk, two daemons, two
real mosquitto brokers bridged with config/two-centres/mosquitto-bridge-110.conf, all on loopback.

* the 12345 centre: simulator A on dialplans/two-centres/12345, daemon ``c12345``, broker A;
* the 110 centre: simulator B on dialplans/two-centres/110, daemon ``c110``, broker B carrying the bridge
  to broker A (persistence on: B is the bridge process the outage tests kill and restart);
* the trunk: a call A dials on ``centre-110`` (primary) or ``centre-110-backup`` arrives at B with the
  caller's number and ``X-Callbridge-Handover`` (callbridge/sim/trunk_link.py).

Each daemon runs in-process (``App``, as the other e2e tests) with its bus, its records (SQLite) and
``centres.peer_site`` naming the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from callbridge.app import App
from callbridge.dialplan import load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.domain import DomainEvent
from callbridge.settings import Settings
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.sim.trunk_link import TrunkLink, join
from callbridge.testing.lab import ROOT, SECRET, Lab, sim_config, sim_phone_context, started
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto
from tests.e2e.ami_coalesce import CoalescingRelay

BRIDGE = ROOT / "config" / "two-centres" / "mosquitto-bridge-110.conf"
CENTRES = ROOT / "dialplans" / "two-centres"


@dataclass
class Centre:
    name: str  # 12345 | 110
    lab: Lab  # its simulator, its daemon, its local events
    broker: Mosquitto
    records: Path
    relay: CoalescingRelay | None = None  # between the daemon and its PBX, when the test asked for one

    @property
    def app(self) -> App:
        return self.lab.app

    async def records_of(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of this centre's records once everything submitted so far is written."""
        assert self.app.writer is not None and self.app.records is not None
        await self.app.writer.flush()
        return [dict(r) for r in self.app.records.backend.query(sql, args)]


@dataclass
class TwoCentres:
    c12345: Centre
    c110: Centre
    trunks: list[TrunkLink]

    async def linked(self) -> None:
        """Both daemons connected and subscribed to their peer (wrap in a timeout)."""
        for c in (self.c12345, self.c110):
            assert c.app.publisher is not None and c.app.centres is not None
            assert c.app.centres.subscriber is not None
            await c.app.publisher.wait_connected()
            await c.app.centres.subscriber.link.wait_subscribed()


def _settings(name: str, peer: str, port: int, broker: Mosquitto, tmp: Path) -> Settings:
    return Settings.model_validate({
        "site_id": f"c{name}",
        "ami": {"host": "127.0.0.1", "port": port, "auth": "plain", "ping_interval": 1.0, "ping_timeout": 1.0},
        "mqtt": {"host": broker.host, "port": broker.port, "outbox_path": str(tmp / "outbox.db"),
                 "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
        "store": {"path": str(tmp / "records.sqlite3")},
        "centres": {"peer_site": f"c{peer}", "window_s": 120},
        "web": {"port": 0},  # the console (its screen pop), on a free port
    })  # fmt: skip


def _prepare(name: str, tmp: Path) -> tuple[Path, Simulator]:
    """The centre's dialplans (short timers) and its simulator running what they render to."""
    dialplans = tmp / "dialplans"
    dialplans.mkdir(parents=True)
    for f in sorted((CENTRES / name).glob("*.yaml")):
        text = f.read_text(encoding="utf-8").replace("answer_timeout: 20", "answer_timeout: 5")
        (dialplans / f.name).write_text(text, encoding="utf-8")
    plan = load_dialplan(dialplans)
    extensions = tmp / "extensions.conf"
    extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
    return dialplans, Simulator(sim_config(plan, extensions), users=[AmiUser("callbridge", SECRET)],
                                login_fail_delay=0.05)  # fmt: skip


@contextlib.asynccontextmanager
async def _centre(name: str, peer: str, broker: Mosquitto, tmp: Path, coalesce: bytes | None = None,
                  ) -> AsyncIterator[Centre]:  # fmt: skip
    dialplans, sim = _prepare(name, tmp)
    port = await sim.start()
    relay = CoalescingRelay(port, trigger=coalesce) if coalesce is not None else None
    if relay is not None:
        port = await relay.start()
    events: list[DomainEvent] = []
    settings = _settings(name, peer, port, broker, tmp)
    app = App(settings, ami_secret=SECRET, dialplan_path=dialplans, event_sinks=[events.extend],
              enable_web=True, watch_interval=0.5)  # fmt: skip
    lab = Lab(sim, app, dialplans, events)
    try:
        await started(lab)
        yield Centre(name, lab, broker, tmp / "records.sqlite3", relay)
    finally:
        async with asyncio.timeout(15):
            await app.stop()
            if relay is not None:
                await relay.stop()
            await sim.stop()
        assert not sim.errors, sim.errors


def bridge_config(peer: Mosquitto, workdir: Path) -> str:
    """The repository's bridge file for broker B, with persistence so a killed B keeps its sessions."""
    bridge = BRIDGE.read_text(encoding="utf-8").replace("@PEER@", f"{peer.host}:{peer.port}")
    persistence = workdir / "persistence"
    persistence.mkdir(parents=True, exist_ok=True)
    # later lines win: the helper's "persistence false" is overridden; every change is saved at once
    lines = ["persistence true", f"persistence_location {persistence}/", "autosave_on_changes true",
             "autosave_interval 1"]  # fmt: skip
    return "\n".join(lines) + "\n" + bridge


async def bridge_up(a: Mosquitto, b: Mosquitto, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Until a probe published on each broker reaches the other (the bridge carries both ways)."""
    async with asyncio.timeout(timeout):
        for src, dst, topic in ((a, b, "callbridge/c12345/events/probe"), (b, a, "callbridge/c110/events/probe")):
            async with aiomqtt.Client(dst.host, dst.port, timeout=5) as sub, aiomqtt.Client(src.host, src.port) as pub:
                await sub.subscribe(topic, qos=1)
                while True:
                    await pub.publish(topic, b"probe", qos=1)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await anext(aiter(sub.messages))
                            break


@contextlib.asynccontextmanager
async def open_two_centres(tmp_path: Path, *, strip_header: bool = False, coalesce_110: bytes | None = None,
                           ) -> AsyncIterator[TwoCentres]:  # fmt: skip
    """``coalesce_110``: the 110 daemon reads its PBX through a :class:`CoalescingRelay` on that trigger."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker-12345") as broker_a:
        b_dir = tmp_path / "broker-110"
        with Mosquitto(b_dir, extra_config=bridge_config(broker_a, b_dir)) as broker_b:
            async with (
                _centre("12345", "110", broker_a, tmp_path / "c12345") as a,
                _centre("110", "12345", broker_b, tmp_path / "c110", coalesce_110) as b,
            ):
                trunks = [join(a.lab.sim, ep, b.lab.sim, strip_header=strip_header)
                          for ep in ("centre-110", "centre-110-backup")]  # fmt: skip
                trunks.append(join(b.lab.sim, "centre-12345", a.lab.sim, strip_header=strip_header))
                pair = TwoCentres(a, b, trunks)
                await bridge_up(broker_a, broker_b)
                async with asyncio.timeout(15):
                    await pair.linked()
                yield pair
                for t in trunks:
                    t.close()
    shutil.rmtree(tmp_path / "c12345" / "dialplans", ignore_errors=True)
