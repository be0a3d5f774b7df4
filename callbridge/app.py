"""Composition root: settings → dialplan → AMI client → tracker → engine → bus, in one TaskGroup.

``App`` is what ``callbridge run`` runs, and what tests and the demo start in-process::

    app = App(settings, ami_secret="...", event_sinks=[captured.extend])
    await app.start()            # returns once the tasks run (AMI connects in the background)
    app.engine.status()          # engine state; app.tracker is the call picture
    await app.stop()             # graceful: no call is touched

Shutdown never sends an action: calls in progress stay exactly where Asterisk has them. Hot reload
(SIGHUP, a changed dialplan file, or the ``reload`` command) validates first; an invalid dialplan is
logged and published as ``dialplan.rejected`` and the running one stays; a valid one is swapped in
whole, and transfers in progress keep the rule object they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from callbridge.ami.client import AmiClient
from callbridge.calls.tracker import CallTracker
from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.engine.runtime import Engine, hotline_of
from callbridge.engine.service import EngineService, EventSink
from callbridge.errors import ConfigError, LocalError
from callbridge.settings import Settings

log = structlog.get_logger("callbridge.app")

#: How often the dialplan files' modification times are compared (seconds).
WATCH_INTERVAL = 1.0


def dialplan_mtimes(path: Path) -> dict[str, float]:
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    out: dict[str, float] = {}
    for f in files:
        with contextlib.suppress(OSError):
            out[str(f)] = f.stat().st_mtime_ns / 1e9
    return out


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
        self._mtimes = dialplan_mtimes(self.dialplan_path)
        self.tracker = CallTracker(hotline_of=hotline_of(lambda: self.plan), clock=clock)
        self.engine = Engine(self.plan, self.tracker)
        self.ami: AmiClient | None = None
        self.service: EngineService | None = None
        self.publisher: Any = None
        self.command_server: Any = None
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._reloads: set[asyncio.Future[None]] = set()
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
        s = self.settings
        secret = self._ami_secret if self._ami_secret is not None else s.ami.secret_value()
        self.ami = AmiClient(s.ami.host, s.ami.port, s.ami.username, secret, auth=s.ami.auth,
                             ping_interval=s.ami.ping_interval, ping_timeout=s.ami.ping_timeout,
                             connect_timeout=s.ami.connect_timeout, action_timeout=s.ami.action_timeout)  # fmt: skip
        sinks: list[EventSink] = list(self._sinks)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if install_signals else ()
        try:
            # inside the try: a bus or store that fails to start still gets the others closed
            if self._enable_bus:
                sinks.append(self._start_bus())
            if self._enable_store:
                sinks.append(self._start_store())
            self.service = EngineService(self.engine, self.tracker, self.ami, sinks, clock=self._clock,
                                         reload=self.reload)  # fmt: skip
            for sig in signals:
                loop.add_signal_handler(sig, self._stop.set if sig != signal.SIGHUP else self._reload_on_sighup)
            log.info("callbridge.starting", ami=f"{s.ami.host}:{s.ami.port}", dialplan=str(self.dialplan_path),
                     mode=self.engine.mode)  # fmt: skip
            await self._run_tasks(self.ami, self.service)
        finally:
            await self._close_parts()  # no-op for what the graceful path already closed
            if self.service is not None:
                self.service.close()
            for sig in signals:
                loop.remove_signal_handler(sig)
            log.info("callbridge.stopped")

    async def _run_tasks(self, ami: AmiClient, service: EngineService) -> None:
        publisher, commands = self.publisher, self.command_server  # as wired: never re-read after teardown
        async with asyncio.TaskGroup() as tg:
            ami.start()
            consumer = tg.create_task(service.consume_batches(ami.batches()), name="engine")
            watcher = tg.create_task(self._watch(), name="dialplan-watch")
            bus = (("publisher", publisher), ("commands", commands))
            bus_tasks = [tg.create_task(t.run(), name=n) for n, t in bus if t is not None]
            extra = ([tg.create_task(self._publish_state(), name="state")]
                     if publisher is not None or self.board is not None else [])
            if self.writer is not None:
                self.writer.start()
            if self.web is not None:
                extra.append(tg.create_task(self.web.serve(), name="web"))
            self._started.set()
            await self._stop.wait()
            log.info("callbridge.stopping", note="no call is touched")
            watcher.cancel()
            for task in extra:
                task.cancel()
            await ami.close()  # ends the stream, so the consumer returns
            await consumer
            await self._close_parts()
            for task in bus_tasks:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5.0):
                        await task

    async def _close_parts(self) -> None:
        """Close AMI, records, commands and publisher — each once, each even if another one fails."""
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.ami is not None:
            steps.append(("ami", self.ami.close))
        if self.writer is not None:
            steps.append(("records", lambda: self.writer.aclose(drain_s=5.0)))
        if self.command_server is not None:
            steps.append(("commands", self.command_server.stop))
        if self.publisher is not None:
            steps.append(("publisher", lambda: self.publisher.stop(drain_timeout=2.0)))
        for name, step in steps:
            if name in self._closed:
                continue
            self._closed.add(name)
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # keep closing the rest: a half-closed daemon is worse than a logged error
                log.exception("callbridge.close_failed", part=name)

    def _reload_on_sighup(self) -> None:
        self._spawn_reload("sighup")

    def _start_bus(self) -> EventSink:
        from callbridge.bus.publisher import Publisher

        self.publisher = Publisher(self.settings.mqtt)
        try:
            from callbridge.bus.command_server import CommandServer
        except ImportError:  # pragma: no cover - the bus ships both
            return self.publisher.publish_events_nowait  # type: ignore[no-any-return]
        self.command_server = CommandServer(self.settings.mqtt, _LateHandler(self))
        return self.publisher.publish_events_nowait  # type: ignore[no-any-return]

    def _start_store(self) -> EventSink:
        """Records (SQLite, or PostgreSQL with a DSN), the live board and, when enabled, the web server."""
        from callbridge.store.live import LiveBoard
        from callbridge.store.records import open_record_store
        from callbridge.store.sink import RecordsSink
        from callbridge.store.writer import RecordWriter

        st = self.settings.store
        dsn = st.postgres_dsn.get_secret_value() if st.postgres_dsn is not None else None
        self.records = open_record_store(st.path, dsn)
        targets = {h.number: h.answer_rate_target for h in self.plan.hotlines.values()}
        names = {h.number: h.name for h in self.plan.hotlines.values()}
        self.board = LiveBoard(list(self.plan.hotlines), targets=targets, names=names)
        publish = self.publisher.publish_events_nowait if self.publisher is not None else None
        self.writer = RecordWriter(self.records, clock=self._clock)
        sink = RecordsSink(self.writer, self.board, publish=publish)
        self.writer.on_alarm = sink.backlog_alarm
        if self._enable_web:
            from callbridge.web.server import WebServer

            web = self.settings.web
            token = web.token.get_secret_value() if web.token is not None else None
            self.web = WebServer(self.records, self.board, host=web.host, port=web.port, token=token,
                                 writer=self.writer, targets=targets, readiness=self.readiness,
                                 clock=self._clock)  # fmt: skip
            sink.on_change = self.web.notify
        return sink

    def readiness(self) -> dict[str, Any]:
        """``/readyz``: AMI logged in and resynced, and event delivery not stalled beyond
        ``mqtt.delivery_stall_s`` (a broker outage the outbox absorbs is reported, not a failure)."""
        ami_ok = self.ami is not None and self.ami.connected
        bus = None if self.publisher is None else bool(self.publisher.connected)
        delivery = None if self.publisher is None else self.publisher.delivery_state()
        ready = ami_ok and not (delivery and delivery["stalled"])
        return {"ready": ready, "ami": ami_ok, "mqtt": bus, "delivery": delivery, "mode": self.engine.mode}

    async def _publish_state(self) -> None:
        """Retained state topics (mode, per queue and per hotline), republished only when they change."""
        last: dict[str, Any] = {}
        mode_since = self._clock()
        while True:
            try:
                mode_since = self._state_round(last, mode_since)
            except Exception:  # state topics are a convenience: never let them stop the daemon
                log.exception("state.publish_failed")
            await asyncio.sleep(1.0)

    def _state_round(self, last: dict[str, Any], mode_since: float) -> float:
        from callbridge.bus.state import HotlineState, ModeState, QueueState
        from callbridge.engine.queues import queue_stats

        now = self._clock()
        if self.publisher is None:
            self._board_agents(now)
            return mode_since
        if last.get("mode") != self.engine.mode:
            mode_since = now if "mode" in last else mode_since
            self.publisher.set_state_nowait("mode", ModeState(mode=self.engine.mode, since=mode_since))
            last["mode"] = self.engine.mode
        per_queue: dict[str, tuple[int, float, int, int]] = {}
        for name in self.plan.queues:
            s = queue_stats(self.tracker.queues.get(name), now)
            members = len(self.tracker.queues[name].members) if name in self.tracker.queues else 0
            per_queue[name] = (s.waiting, s.longest_wait_s, s.free_agents, max(members - s.free_agents, 0))
        for name, (waiting, longest, free, busy) in per_queue.items():
            owner = self.plan.hotline_of_queue(name)
            self._state_if_changed(last, f"queues/{name}", QueueState(
                queue=name, hotline=owner.number if owner else None, waiting=waiting,
                longest_wait_s=round(longest, 1), agents_free=free, agents_busy=busy, ts=now))  # fmt: skip
        for h in self.plan.hotlines.values():
            rows = [per_queue[q] for q in h.agent_queues if q in per_queue]
            if rows:
                self._state_if_changed(last, f"hotlines/{h.number}", HotlineState(
                    hotline=h.number, waiting=sum(r[0] for r in rows),
                    longest_wait_s=round(max(r[1] for r in rows), 1), agents_free=sum(r[2] for r in rows),
                    agents_busy=sum(r[3] for r in rows), ts=now))  # fmt: skip
        self._board_agents(now, per_queue)
        return mode_since

    def _board_agents(self, now: float, per_queue: dict[str, tuple[int, float, int, int]] | None = None) -> None:
        """Give the wallboard the free agents per hotline: no call event carries them, the tracker knows."""
        if self.board is None:
            return
        if per_queue is None:
            from callbridge.engine.queues import queue_stats

            per_queue = {}
            for name in self.plan.queues:
                s = queue_stats(self.tracker.queues.get(name), now)
                per_queue[name] = (s.waiting, s.longest_wait_s, s.free_agents, 0)
        for h in self.plan.hotlines.values():
            rows = [per_queue[q] for q in h.agent_queues if q in per_queue]
            if rows:
                self.board.set_agents_free(h.number, sum(r[2] for r in rows))

    def _state_if_changed(self, last: dict[str, Any], suffix: str, state: Any) -> None:
        # the wait grows every second; republish it in 10 s steps, everything else on change
        key = state.model_copy(update={"ts": 0.0, "longest_wait_s": int(state.longest_wait_s) // 10})
        if last.get(suffix) != key:
            last[suffix] = key
            self.publisher.set_state_nowait(suffix, state)

    # --- hot reload ---------------------------------------------------------------------------------

    async def reload(self, reason: str = "command") -> dict[str, Any]:
        """Validate, then swap atomically; an invalid dialplan is rejected and the running one stays."""
        now = self._clock()
        self._mtimes = dialplan_mtimes(self.dialplan_path)
        try:
            plan = await asyncio.to_thread(load_dialplan, self.dialplan_path)
        except (ConfigError, LocalError) as exc:
            problems = [str(p) for p in getattr(exc, "problems", ())] or [str(exc)]
            log.error("dialplan.rejected", reason=reason, problems=problems[:20])
            self.engine.reject_dialplan(problems, now, reason=reason)
            self._flush()
            from callbridge.errors import CommandError

            raise CommandError("dialplan_invalid", "; ".join(problems[:5])) from None
        self.plan = plan
        self.engine.swap_dialplan(plan, now, reason=reason)
        log.info("dialplan.reloaded", reason=reason, files=list(plan.sources), mode=self.engine.mode)
        self._flush()
        return {"reloaded": True, "mode": self.engine.mode, "files": list(plan.sources)}

    def _spawn_reload(self, reason: str) -> None:
        async def quietly() -> None:
            with contextlib.suppress(LocalError):  # already logged and published as dialplan.rejected
                await self.reload(reason)

        task = asyncio.ensure_future(quietly())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def _flush(self) -> None:
        if self.service is not None:
            self.service.run_effects()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._watch_interval)
            current = dialplan_mtimes(self.dialplan_path)
            if current != self._mtimes:
                log.info("dialplan.changed", files=sorted(set(current.items()) ^ set(self._mtimes.items())))
                with contextlib.suppress(LocalError):
                    await self.reload("file_change")

    # --- convenience for tests and the demo ---------------------------------------------------------

    def publish_now(self, events: Sequence[DomainEvent]) -> None:
        if self.service is not None:
            self.service.emit(events)


class _LateHandler:
    """The command server is built before the engine service; commands go to it once it exists."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def handle(self, cmd: Any) -> dict[str, Any]:
        from callbridge.errors import CommandError

        if self._app.service is None:
            raise CommandError("not_ready", "callbridge is starting")
        return await self._app.service.handle(cmd)


def tune_gc() -> None:
    """Fewer, cheaper collections for a long-running daemon.

    Everything loaded at start-up (modules, the dialplan, settings) lives as long as the process; freezing
    it keeps the cyclic collector from re-scanning it on every run, and a larger first-generation threshold
    makes collections rarer under a burst of AMI events (measured about +25 % ingest in the profile that
    found it: GC took ~10 % of ingest). Only the daemon's entry point calls this, not library users.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(20_000, second, third)


def use_uvloop() -> bool:
    """Install uvloop's event loop policy when it is installed (faster I/O); report whether it was."""
    try:
        import uvloop
    except ImportError:
        return False
    uvloop.install()
    return True
