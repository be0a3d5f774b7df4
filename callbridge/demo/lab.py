"""The demo's city: a copy of the example dialplans, the simulator running their Asterisk rendering,
the real daemon (:class:`callbridge.app.App`) and an MQTT subscriber on ``callbridge/#``.

Everything lives in a temporary directory (dialplan copy, outbox) except the records, kept at
``records_path`` when given (``callbridge demo`` prints where, so ``callbridge records`` / ``report`` can
read the day afterwards). The AMI secret and the
wallboard's web token are generated at start and held in memory only: the demo writes no secret anywhere.
The daemon runs with its records store and (unless ``web=False``) its web server on a free loopback port,
so the live wallboard can be watched while the day plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callbridge.ami.framing import AmiMessage
from callbridge.app import App
from callbridge.bus.clients import CommandClient, watch_events
from callbridge.bus.envelope import decode
from callbridge.demo.broker import EmbeddedBroker
from callbridge.demo.watch import EventLog, Predicate
from callbridge.dialplan import Dialplan, load_dialplan
from callbridge.dialplan.render_asterisk import render_extensions
from callbridge.errors import BrokerError
from callbridge.settings import Settings
from callbridge.sim.config import LAB_DIALPLAN, SimConfig
from callbridge.sim.server import AmiUser
from callbridge.sim.simulator import Simulator
from callbridge.store.kpi import KpiReport, compute
from callbridge.store.record import FINAL_TRANSFER_OUTCOMES

SITE = "demo"
AMI_USER = "callbridge"

#: Edits applied to the demo's copy of the dialplans (the originals are never touched), each with why.
DEMO_EDITS: tuple[tuple[str, str, str], ...] = (
    # The 119 expert seat becomes a SIP phone, so the demo can keep it busy while callers wait.
    ("[Local/2291@sim]", "[PJSIP/agent2291]", "119 expert seat as a phone"),
    # Short answer timeout, so a failing line is given up in seconds, not 20 s.
    ("answer_timeout: 20 ", "answer_timeout: 5 ", "short answer timeout"),
    # A "surge" of a handful of calls is enough to trigger and to recover from overflow.
    ("waiting_calls: 8 ", "waiting_calls: 3 ", "overflow after 3 waiting callers"),
    ("longest_wait: 60\n", "longest_wait: 600\n", "start on the number waiting, not on the time"),
    ("waiting_calls: 2\n      longest_wait: 20\n", "waiting_calls: 0\n      longest_wait: 500\n",
     "recover once nobody waits"),
)


def default_dialplans() -> Path:
    """``./dialplans`` when run from a checkout or a container, else the one beside the package."""
    here = Path("dialplans")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "dialplans"


def copy_dialplans(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(source.glob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        for old, new, _why in DEMO_EDITS:
            text = text.replace(old, new)
        (dest / f.name).write_text(text, encoding="utf-8")
    return dest


def sim_phone_context() -> str:
    """The lab's ``[sim]`` context: ``Local/<n>@sim`` queue members answer like phones."""
    start = LAB_DIALPLAN.index("[sim]")
    return LAB_DIALPLAN[start : LAB_DIALPLAN.index("[internal]")]


def sim_config(plan: Dialplan, extensions: Path, answer_after: float = 0.3) -> SimConfig:
    """Agents, trunks and queues of the simulator, read from the dialplan the daemon runs."""
    agents: dict[str, dict[str, Any]] = {}
    trunks: dict[str, dict[str, Any]] = {}
    for q in plan.queues.values():
        for member in q.members:
            if member.startswith("PJSIP/"):
                name = member.split("/", 1)[1]
                agents[name] = {"name": name, "number": name.removeprefix("agent"), "answer_after": answer_after}
    for t in plan.trunks.values():
        for line in t.lines:
            target = line.split("/", 1)[1]
            if "@" in target:
                number, endpoint = target.split("@", 1)
                trunks[endpoint] = {"name": endpoint, "number": number, "answer_after": answer_after}
    supported = ("ringall", "linear", "rrmemory", "leastrecent")
    queues = [{"name": q.name, "strategy": q.strategy if q.strategy in supported else "ringall",
               "timeout": float(q.timeout), "members": list(q.members)} for q in plan.queues.values()]  # fmt: skip
    return SimConfig.model_validate({
        "dialplan": str(extensions), "carrier": "carrier", "inbound_context": "cb-inbound",
        "agents": list(agents.values()), "trunks": list(trunks.values()), "queues": queues,
    })  # fmt: skip


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    protocol: str  # "5" | "3.1.1"


def parse_broker(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"expected mqtt://host:port, found {url!r}")
    return BrokerAddress(parts.hostname, parts.port or 1883, "5")


@dataclass
class DemoLab:
    """Broker + simulator + daemon + subscriber, started and stopped together."""

    workdir: Path
    dialplans_source: Path
    broker_url: str | None = None
    answer_after: float = 0.3
    log: EventLog = field(default_factory=EventLog)
    broker: BrokerAddress | None = None
    sim: Simulator | None = None
    app: App | None = None
    dialplans: Path | None = None
    #: Generated at start, held in memory only (shown by --keep-running so a person can log in to the AMI).
    ami_secret: str = field(default="", repr=False)
    #: Serve the wallboard and the records API (``/``, ``/api/*``) on a free loopback port.
    web: bool = True
    #: Generated at start, held in memory only; part of :attr:`wallboard_url`.
    web_token: str = field(default="", repr=False)
    #: The records store's SQLite file (None: inside ``workdir``, gone with it).
    records_path: Path | None = None
    #: When :meth:`start` began (epoch seconds): the KPIs' period starts here.
    started_at: float = 0.0
    commander: CommandClient | None = None
    _embedded: EmbeddedBroker | None = None
    _subscriber: asyncio.Task[None] | None = None
    _subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self.started_at = time.time()
        if self.broker_url:
            self.broker = parse_broker(self.broker_url)
        else:
            # amqtt speaks MQTT 3.1.1 only: the daemon uses the 3.1.1 fallback of the contract.
            self._embedded = EmbeddedBroker()
            await self._embedded.start()
            self.broker = BrokerAddress(self._embedded.host, self._embedded.port, "3.1.1")
        self._subscriber = asyncio.create_task(self._subscribe(), name="demo-subscriber")
        waiter = asyncio.ensure_future(self._subscribed.wait())
        await asyncio.wait({waiter, self._subscriber}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if self._subscriber.done():
            waiter.cancel()
            self._subscriber.result()
        if not self._subscribed.is_set():
            waiter.cancel()
            raise TimeoutError(f"could not subscribe to {self.broker.host}:{self.broker.port}")

        self.dialplans = copy_dialplans(self.dialplans_source, self.workdir / "dialplans")
        plan = load_dialplan(self.dialplans)
        extensions = self.workdir / "extensions.conf"
        extensions.write_text(render_extensions(plan) + "\n" + sim_phone_context(), encoding="utf-8")
        ami_secret = self.ami_secret = secrets.token_urlsafe(24)  # in memory only, shared by both sides
        self.sim = Simulator(sim_config(plan, extensions, self.answer_after), users=[AmiUser(AMI_USER, ami_secret)],
                             login_fail_delay=0.05)  # fmt: skip
        port = await self.sim.start()
        self.web_token = secrets.token_urlsafe(18) if self.web else ""
        settings = Settings.model_validate({
            "site_id": SITE,
            "ami": {"host": "127.0.0.1", "port": port, "username": AMI_USER, "auth": "md5",
                    "ping_interval": 2.0, "ping_timeout": 2.0},
            "mqtt": {"host": self.broker.host, "port": self.broker.port, "protocol": self.broker.protocol,
                     "client_id": f"callbridge-demo-{secrets.token_hex(3)}",
                     "outbox_path": str(self.workdir / "outbox.sqlite3")},
            "store": {"path": str(self.records_path or self.workdir / "records.sqlite3")},
            "web": {"enabled": self.web, "host": "127.0.0.1", "port": 0, "token": self.web_token or None},
        })  # fmt: skip
        # The file watcher is slowed down: the demo triggers reloads itself, so each one is narrated once.
        self.app = App(settings, ami_secret=ami_secret, dialplan_path=self.dialplans, watch_interval=3600.0,
                       enable_store=True, enable_web=self.web)  # fmt: skip
        async with asyncio.timeout(15):
            await self.app.start()
            assert self.app.ami is not None
            await self.app.ami.wait_connected(10)
            await self._web_listening()
            await self._resynced()
            if self.app.command_server is not None:
                await self.app.command_server.wait_subscribed()
        self.commander = CommandClient(self.broker.host, self.broker.port, self.broker.protocol, SITE,
                                       client_prefix="demo-console")
        await self.commander.start()

    async def _resynced(self) -> None:
        """Until the daemon's post-login resync has shown the queues (the tracker has no event for it)."""
        assert self.app is not None
        while not self.app.tracker.queues:  # noqa: ASYNC110 - polling in-process state, bounded by the caller
            await asyncio.sleep(0.02)

    async def _web_listening(self) -> None:
        """Until the web server has its port (it is bound by a task of the app's TaskGroup)."""
        assert self.app is not None
        while self.app.web is not None and not self.app.web.port:  # noqa: ASYNC110 - bounded by the caller
            await asyncio.sleep(0.02)

    async def _subscribe(self) -> None:
        assert self.broker is not None

        def seen(topic: str, payload: bytes) -> None:
            with contextlib.suppress(ValueError, TypeError):  # the retained status topic is no CloudEvent
                self.log.add(topic, decode(payload))

        await watch_events(self.broker.host, self.broker.port, self.broker.protocol, "callbridge/#", seen,
                           ready=self._subscribed, client_prefix="demo-watch")

    @property
    def ami_port(self) -> int:
        return self.sim.port if self.sim is not None else 0

    @property
    def mqtt_port(self) -> int:
        return self.broker.port if self.broker is not None else 0

    def pause_member(self, queue: str, interface: str, paused: bool) -> None:
        """A queue member (un)pauses at the PBX, as the seat's phone would with a QueuePause."""
        assert self.sim is not None
        msg = AmiMessage((("Action", "QueuePause"), ("Queue", queue), ("Interface", interface),
                          ("Paused", "true" if paused else "false"), ("Reason", "busy elsewhere" if paused else "")))
        self.sim.handlers["queuepause"](self.sim, msg)

    @property
    def wallboard_url(self) -> str | None:
        """``http://127.0.0.1:<port>/?token=…`` — this run's token, for a person's browser; ``None`` without web."""
        web = self.app.web if self.app is not None else None
        if web is None or not web.port:
            return None
        return f"{web.url}/?token={self.web_token}"

    async def kpis(self) -> KpiReport | None:
        """The KPIs of this run, computed by :func:`callbridge.store.kpi.compute` over the records the daemon
        wrote (after the records writer has flushed); ``None`` when the daemon has no records store."""
        app = self.app
        if app is None or app.records is None:
            return None
        if app.writer is not None:
            async with asyncio.timeout(10):
                await app.writer.flush()
        # a margin on both sides: event timestamps come from the daemon's clock, not from this method's
        records = await asyncio.to_thread(app.records.period_records, self.started_at - 60.0, time.time() + 60.0)
        targets = {h.number: h.answer_rate_target for h in app.plan.hotlines.values()}
        return compute(records, targets)

    def callers_still_up(self) -> list[str]:
        """The citizens' channels (the carrier's inbound legs) still up in the simulator."""
        if self.sim is None:
            return []
        return [c.name for c in list(self.sim.world.channels.values()) if c.name.startswith("PJSIP/carrier-")]

    def lines_still_up(self) -> list[str]:
        """Hotline lines still up that are calls of their own — the legs callbridge called into three-way
        rooms (e.g. a 120 line the citizen left); a blind transfer's line is the citizen's call and ends with it."""
        if self.sim is None:
            return []
        return [c.name for c in list(self.sim.world.channels.values())
                if c.name.startswith("PJSIP/hotline-") and c.uniqueid == c.linkedid]  # fmt: skip

    async def hang_up_callers(self, timeout: float = 10.0) -> list[str]:  # noqa: ASYNC109 - bounded wait
        """End the day: every caller still connected hangs up, as a scene does, then every hotline line left
        without them (the 120 agent of a three-way puts the phone down once the citizen has gone); the
        daemon's ``call.ended`` for each is waited for on MQTT. Returns the call ids whose end was *not* seen."""
        missing = await self._hang_up(self.callers_still_up, timeout)
        return missing + await self._hang_up(self.lines_still_up, timeout)

    async def _hang_up(self, still_up: Callable[[], list[str]], timeout: float) -> list[str]:  # noqa: ASYNC109
        if self.sim is None:
            return []
        since = self.log.mark
        call_ids = []
        for name in still_up():
            chan = self.sim.channel(name)
            if chan is not None:
                call_ids.append(chan.linkedid)
                self.sim.caller_hangup(name)
        missing = []
        for call_id in dict.fromkeys(call_ids):
            seen = await self.log.wait_for("call.ended", _of_call(call_id), since=since, timeout=timeout)
            if seen is None:
                missing.append(call_id)
        return missing

    async def settled_kpis(self, timeout: float = 5.0) -> KpiReport | None:  # noqa: ASYNC109 - bounded wait
        """:meth:`kpis` once the store has recorded a final outcome for every transfer (the engine reports a
        transfer completed only after both sides hung up), or the last snapshot after ``timeout``; a row
        still in progress then is shown as such, never as if it were final."""
        deadline = time.monotonic() + timeout
        while True:
            report = await self.kpis()
            if report is None or time.monotonic() >= deadline or not transfers_in_progress(report):
                return report
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        async with asyncio.timeout(20):
            if self.commander is not None:
                await self.commander.stop()
            if self.app is not None:
                await self.app.stop()
            if self.sim is not None:
                await self.sim.stop()
            if self._subscriber is not None:
                self._subscriber.cancel()
                with contextlib.suppress(asyncio.CancelledError, BrokerError):
                    await self._subscriber
            if self._embedded is not None:
                await self._embedded.stop()
        if self.dialplans is not None:
            shutil.rmtree(self.dialplans, ignore_errors=True)


def agent_endpoint(channel: str) -> str:
    """``PJSIP/agent1001-00000004`` → ``agent1001``."""
    return re.sub(r"-[0-9a-f]+$", "", channel.split("/", 1)[1])


def _of_call(call_id: str) -> Predicate:
    return lambda e: e.subject == call_id


def transfers_in_progress(report: KpiReport) -> int:
    """Transfers of the report without a final outcome (requested, ringing, or answered and still up)."""
    return sum(n for outcomes in report.transfers_by_pair.values() for outcome, n in outcomes.items()
               if outcome not in FINAL_TRANSFER_OUTCOMES)  # fmt: skip
