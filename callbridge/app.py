"""Composition root: settings → dialplan → AMI client → tracker → engine → bus, each part a watched task.

``App`` is what ``callbridge run`` runs, and what tests and the demo start in-process::

    app = App(settings, ami_secret="...", event_sinks=[captured.extend])
    await app.start()            # returns once the tasks run (AMI connects in the background)
    app.engine.status()          # engine state; app.tracker is the call picture
    await app.stop()             # graceful: no call is touched

Shutdown never sends an action: calls in progress stay exactly where Asterisk has them. The local parts
(outbox, records store, web port) are opened before AMI and MQTT are touched: one that cannot start ends
the run with :class:`~callbridge.errors.PartFailedError` naming it and the cause, after ``offline`` was put
on the retained status topic; a part that fails later stops the daemon the same way (see
:mod:`callbridge.lifecycle`: every part is stopped with a bound, nothing is awaited forever). Hot reload
(SIGHUP, a changed dialplan file, or the ``reload`` command) validates first; an invalid dialplan is
logged and published as ``dialplan.rejected`` and the running one stays; a valid one is swapped in
whole, and transfers in progress keep the rule object they started with (:mod:`callbridge.app_reload`).
The retained state topics are :mod:`callbridge.app_state`, projected by :mod:`callbridge.queue_projection`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from callbridge.ami.client import AmiClient
from callbridge.app_reload import DialplanReloader
from callbridge.app_state import StateTopics
from callbridge.bus.command_server import CommandServer
from callbridge.bus.publisher import Publisher
from callbridge.bus.publisher_mqtt import publish_retained_once
from callbridge.bus.state import OFFLINE
from callbridge.bus.topics import Topics
from callbridge.calls.tracker import UNTYPED_READ, CallTracker
from callbridge.centres.service import CentresService
from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.engine.core import Engine, hotline_of
from callbridge.errors import CommandError, PartFailedError
from callbridge.lifecycle import STEP_S, bounded, part_failure, say_offline, settle
from callbridge.lifecycle import tune_gc as tune_gc  # the daemon's collector tuning (bench/ uses it too)
from callbridge.lifecycle import use_uvloop as use_uvloop
from callbridge.runtime.engine_service import EngineService, EventSink
from callbridge.settings import Settings
from callbridge.store.feedback import FeedbackDesk, Handover, handover_of
from callbridge.store.live import LiveBoard
from callbridge.store.recall import recall
from callbridge.store.records import open_record_store
from callbridge.store.sink import RecordsSink
from callbridge.store.writer import RecordWriter
from callbridge.web.console import Console
from callbridge.web.server import WebServer

log = structlog.get_logger("callbridge.app")

#: How often the dialplan files' modification times are compared (seconds).
WATCH_INTERVAL = 1.0


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        ami_secret: str | None = None,
        dialplan_path: Path | None = None,
        event_sinks: Sequence[EventSink] = (),
        enable_bus: bool = True,
        enable_store: bool = False,
        enable_web: bool = False,
        watch_interval: float = WATCH_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.dialplan_path = Path(dialplan_path or settings.dialplan.path)
        self.plan: Dialplan = load_dialplan(self.dialplan_path)  # invalid at start-up: refuse to run
        self._ami_secret = ami_secret
        self._sinks = list(event_sinks)
        self._enable_bus = enable_bus
        self._enable_store = enable_store or enable_web
        self._enable_web = enable_web
        self.records: Any = None  # RecordStore
        self.writer: Any = None  # RecordWriter
        self.board: Any = None  # LiveBoard
        self.web: Any = None  # WebServer
        self._watch_interval = watch_interval
        self._clock = clock
        self.tracker = CallTracker(hotline_of=hotline_of(lambda: self.plan), clock=clock)
        self.engine = Engine(self.plan, self.tracker)
        self.ami: AmiClient | None = None
        self.service: EngineService | None = None
        self.publisher: Any = None
        self.command_server: Any = None
        self.console: Any = None  # web.console.Console, beside the web server
        self.centres: CentresService | None = None  # the link to the other centre (centres.peer_site)
        #: the case loop's handover_feedback command (record-keeping: handled beside the engine)
        self.feedback = FeedbackDesk(self.publish_now, lookup=self._recorded_handover, clock=clock)
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.reloader = DialplanReloader(self.dialplan_path, self.engine, install=self._install_plan, flush=self._flush,
                                         stopping=self._stop.is_set, clock=clock)  # fmt: skip
        self._closed: set[str] = set()  # parts already closed (stop is idempotent)
        self._failure_reported = False  # the run's failure was raised to a caller already

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start :meth:`run` as a task and return once everything is wired (raises what stopped it)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self.run(install_signals=False), name="callbridge-app")
        runner = self._runner
        started = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait({started, runner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()  # also when start itself is cancelled (a caller's timeout): no stray waiter
        if runner.done() and not self._started.is_set():
            self._failure_reported = True  # raised here; stop() will not raise it again
            runner.result()

    async def stop(self) -> None:
        """Graceful stop; idempotent, and safe after a failed or cancelled :meth:`start`.

        Raises the run's own failure once, unless :meth:`start` already raised it. An ``App`` runs once.
        """
        self._stop.set()
        runner = self._runner
        if runner is None:
            return
        if not runner.done():
            await asyncio.wait({runner})  # never raises the runner's failure; only our own cancellation
        if runner.cancelled() or self._failure_reported:
            return
        failure = runner.exception()
        if failure is not None:
            self._failure_reported = True
            raise failure

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until stopped (SIGTERM/SIGINT, :meth:`stop`); raises :class:`PartFailedError` when a part
        could not start or failed, after every other part was stopped."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if install_signals else ()
        for sig in signals:  # first: a signal during start-up then stops the start-up (no default action)
            loop.add_signal_handler(sig, self._reload_on_sighup if sig == signal.SIGHUP else self._on_stop_signal, sig)
        try:
            await self._run_parts()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            log.info("callbridge.stopped")

    async def _run_parts(self) -> None:
        s = self.settings
        secret = self._ami_secret if self._ami_secret is not None else s.ami.secret_value()
        self.ami = AmiClient(s.ami.host, s.ami.port, s.ami.username, secret, auth=s.ami.auth,
                             ping_interval=s.ami.ping_interval, ping_timeout=s.ami.ping_timeout,
                             connect_timeout=s.ami.connect_timeout, action_timeout=s.ami.action_timeout,
                             untyped=UNTYPED_READ)  # fmt: skip  # the engine reads no untyped kind
        sinks: list[EventSink] = [*self._sinks, self.feedback]
        recorders: list[EventSink] = []  # records and console: they keep the other centre's loop events too
        try:
            try:  # the local parts, before AMI or MQTT is touched: a held port must not leave a half daemon
                if self._enable_bus:
                    sinks.append(self._start_bus())
                if self._enable_store:
                    recorders.append(self._start_store())
                    if self.console is not None:
                        recorders.append(self.console.feed)
                    sinks += recorders
                if self.web is not None:
                    await self._listen(self.web)
            except PartFailedError as exc:
                log.error("callbridge.part_failed", part=exc.part, error=exc.cause)
                if self.publisher is not None or self._enable_bus:
                    await say_offline(self._announce_offline)
                raise
            stage = None  # the binder adds its events inside the batch, before any sink sees it
            if s.centres.peer_site is not None:
                stage = self._start_centres(s.centres.peer_site, recorders).interleave
            self.service = EngineService(self.engine, self.tracker, self.ami, sinks, clock=self._clock,
                                         reload=self.reload, stage=stage)  # fmt: skip
            log.info("callbridge.starting", ami=f"{s.ami.host}:{s.ami.port}", dialplan=str(self.dialplan_path),
                     mode=self.engine.mode)  # fmt: skip
            await self._run_tasks(self.ami, self.service)
        finally:
            await self._close_parts()  # no-op for what the graceful path already closed
            if self.service is not None:
                self.service.close()

    async def _listen(self, web: Any) -> None:
        host, port = self.settings.web.host, self.settings.web.port
        try:
            await web.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's message repeats the address
            raise PartFailedError("web", f"cannot listen on {host}:{port}: {reason}") from exc

    async def _announce_offline(self) -> None:
        mqtt = self.settings.mqtt
        await publish_retained_once(mqtt, client_id=f"{mqtt.resolved_client_id()}-status",
                                    topic=Topics(mqtt.site).status, payload=OFFLINE)  # fmt: skip
        log.info("callbridge.offline_announced")

    async def _run_tasks(self, ami: AmiClient, service: EngineService) -> None:
        """Start the parts' tasks, then wait for a stop request or for a part to end, whichever comes first."""
        publisher, commands = self.publisher, self.command_server  # as wired: never re-read after teardown
        parts: dict[asyncio.Future[Any], str] = {}

        def part(name: str, coro: Any) -> asyncio.Task[Any]:
            task = asyncio.create_task(coro, name=name)
            parts[task] = name
            return task

        ami.start()
        consumer = part("engine", service.consume_batches(ami.batches()))
        own: dict[asyncio.Future[Any], str] = {part("dialplan watcher", self._watch()): "dialplan watcher"}
        peer = self.centres.subscriber.link if self.centres is not None and self.centres.subscriber else None
        wired = (("mqtt publisher", publisher), ("mqtt commands", commands), ("mqtt peer", peer))
        bus: dict[asyncio.Future[Any], str] = {part(n, t.run()): n for n, t in wired if t is not None}
        if publisher is not None or self.board is not None:
            state = StateTopics(self, self._clock)
            own[part("state topics", state.run())] = "state topics"
        if self.writer is not None:
            parts[self.writer.start()] = "records writer"
        self._started.set()
        stopping = asyncio.ensure_future(self._stop.wait())
        failed: tuple[str, asyncio.Future[Any]] | None = None
        try:
            done, _ = await asyncio.wait({stopping, *parts}, return_when=asyncio.FIRST_COMPLETED)
            failed = next(((parts[t], t) for t in done if t in parts), None)
        finally:
            stopping.cancel()
            if failed is not None:
                log.error("callbridge.part_failed", part=failed[0], error=str(part_failure(*failed).cause))
            log.info("callbridge.stopping", note="no call is touched")
            for task in own:
                task.cancel()
            reloads = dict.fromkeys(self.reloader.pending, "dialplan reload")
            for task in reloads:
                task.cancel()
            await bounded("ami", ami.close)  # ends the stream, so the consumer returns
            await settle({consumer: "engine"}, STEP_S)
            await self._close_parts()  # records drained, then the bus asked to stop (it says offline)
            await settle({**own, **reloads}, STEP_S)
            await settle(bus, STEP_S)  # the publisher drains for up to 2 s, then says offline
        if failed is not None:
            raise part_failure(*failed)

    async def _close_parts(self) -> None:
        """Close web, AMI, records, commands and publisher — each once, each within a bound, each even if
        another one fails."""
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.web is not None:
            steps.append(("web", self.web.stop))
        if self.ami is not None:
            steps.append(("ami", self.ami.close))
        if self.writer is not None:
            steps.append(("records", lambda: self.writer.aclose(drain_s=5.0)))
        if self.command_server is not None:
            steps.append(("commands", self.command_server.stop))
        if self.centres is not None:
            steps.append(("peer link", self.centres.stop))
        if self.publisher is not None:
            steps.append(("publisher", lambda: self.publisher.stop(drain_timeout=2.0)))
        for name, step in steps:
            if name not in self._closed:
                self._closed.add(name)
                await bounded(name, step)

    def _on_stop_signal(self, sig: int) -> None:
        log.info("callbridge.signal", signal=signal.Signals(sig).name, stopping=True)
        self._stop.set()

    def _reload_on_sighup(self, sig: int) -> None:
        if self._stop.is_set():  # stopping: a reload now would only race the shutdown
            log.info("callbridge.signal", signal="SIGHUP", ignored="stopping")
            return
        self.reloader.spawn("sighup")

    def _start_bus(self) -> EventSink:
        try:
            self.publisher = Publisher(self.settings.mqtt)
        except (OSError, sqlite3.Error) as exc:
            raise PartFailedError("mqtt outbox", f"{self.settings.mqtt.outbox_path}: {exc}") from exc
        self.command_server = CommandServer(self.settings.mqtt, _LateHandler(self))
        return self.publisher.publish_events_nowait  # type: ignore[no-any-return]

    def _start_centres(self, peer_site: str, recorders: Sequence[EventSink]) -> CentresService:
        """The link to the other centre's daemon (callbridge/centres/service.py)."""
        bus, store = self.settings.mqtt if self._enable_bus else None, self.records and self.records.backend
        self.centres = CentresService(self.settings.centres, peer_site=peer_site, plan=lambda: self.plan, bus=bus,
                                      tracker=self.tracker, publish=self._publish_soon, learners=[self.feedback],
                                      recorders=recorders, records=store, now=self._clock())  # fmt: skip
        return self.centres

    def _start_store(self) -> EventSink:
        """Records (SQLite, or PostgreSQL with a DSN), the live board and, when enabled, the web server."""
        st = self.settings.store
        dsn = st.postgres_dsn.get_secret_value() if st.postgres_dsn is not None else None
        try:
            self.records = open_record_store(st.path, dsn)
        except Exception as exc:  # sqlite, the file system or PostgreSQL: the part is named, the DSN is not
            where = "PostgreSQL" if dsn is not None else str(st.path)
            raise PartFailedError("records store", f"{where}: {type(exc).__name__}: {exc}") from exc
        targets = {h.number: h.answer_rate_target for h in self.plan.hotlines.values()}
        names = {h.number: h.name for h in self.plan.hotlines.values()}
        self.board = LiveBoard(list(self.plan.hotlines), targets=targets, names=names)
        self._recall()
        publish = self.publisher.publish_events_nowait if self.publisher is not None else None
        self.writer = RecordWriter(self.records, clock=self._clock)
        sink = RecordsSink(self.writer, self.board, publish=publish)
        self.writer.on_alarm = sink.backlog_alarm
        if self._enable_web:
            web = self.settings.web
            token = web.token.get_secret_value() if web.token is not None else None
            # the console's actions go through the MQTT command processor (the same checks), built here
            # when the bus is off
            commands = self.command_server or CommandServer(self.settings.mqtt, _LateHandler(self))
            self.console = Console(commands.processor, plan=lambda: self.plan, mode=lambda: self.engine.mode,
                                   clock=self._clock, lab_token=token)  # fmt: skip
            self.web = WebServer(self.records, self.board, host=web.host, port=web.port, token=token,
                                 writer=self.writer, targets=targets, readiness=self.readiness,
                                 clock=self._clock, console=self.console)  # fmt: skip
            sink.on_change = self.web.notify
        return sink

    def _recall(self) -> None:
        """After a restart: the calls, transfers and today's board callbridge left (see store/recall.py)."""
        try:
            recall(self.records, tracker=self.tracker, engine=self.engine, plan=self.plan, board=self.board,
                   now=self._clock())  # fmt: skip
        except Exception:  # unreadable old rows must not keep the daemon from running: it starts as before
            log.exception("records.recall_failed")

    def _recorded_handover(self, transfer_id: str) -> Handover | None:
        return handover_of(self.records.backend, transfer_id) if self.records is not None else None

    def readiness(self) -> dict[str, Any]:
        """``/readyz``: AMI logged in and resynced, and event delivery not stalled beyond
        ``mqtt.delivery_stall_s`` (a broker outage the outbox absorbs is reported, not a failure)."""
        ami_ok = self.ami is not None and self.ami.connected
        bus = None if self.publisher is None else bool(self.publisher.connected)
        delivery = None if self.publisher is None else self.publisher.delivery_state()
        ready = ami_ok and not (delivery and delivery["stalled"])
        intake = None if self.ami is None else self.ami.intake.stats()  # back-pressure on the AMI socket
        return {"ready": ready, "ami": ami_ok, "mqtt": bus, "delivery": delivery, "mode": self.engine.mode,
                "ami_intake": intake}

    # --- hot reload ---------------------------------------------------------------------------------

    async def reload(self, reason: str = "command") -> dict[str, Any]:
        """Validate, then swap atomically; an invalid dialplan is rejected and the running one stays."""
        return await self.reloader.reload(reason)

    def _install_plan(self, plan: Dialplan) -> None:
        self.plan = plan

    def _flush(self) -> None:
        if self.service is not None:
            self.service.run_effects()

    async def _watch(self) -> None:
        await self.reloader.watch(self._watch_interval)

    # --- convenience for tests and the demo ---------------------------------------------------------

    def publish_now(self, events: Sequence[DomainEvent]) -> None:
        if self.service is not None:
            self.service.emit(events)

    def _publish_soon(self, events: Sequence[DomainEvent]) -> None:
        """From inside a sink: after the batch being handed out (every sink sees the events in order)."""
        if self.service is not None:
            self.service.buffer(events)


class _LateHandler:
    """The command server is built before the engine service; commands go to it once it exists."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def handle(self, cmd: Any) -> dict[str, Any]:
        if self._app.service is None:
            raise CommandError("not_ready", "callbridge is starting")
        if cmd.verb == "handover_feedback":
            return self._app.feedback.handle(cmd.body, cmd.scope)
        return await self._app.service.handle(cmd)
