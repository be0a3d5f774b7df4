"""The interpreter around the pure engine: AMI stream in, effects out, results back in.

One consumer reads the AMI client's stream, feeds each event to the tracker and then to the engine,
hands the domain events to the sinks (bus publisher, records) and executes the engine's effects:

* ``SendActions`` — the batch's first action is written at once (:meth:`AmiSender.write_now`, in the
  loop iteration that decided it: before the next AMI item is looked at, before any log line is
  rendered and before any event is handed to a sink), then one task per batch awaits its reply and
  sends the rest in order, stopping at the first failure; the outcome goes back as an
  :class:`ActionResult` (``unknown`` when the connection dropped after writing: never re-sent, the
  engine reconciles after the resync). A first write that fails at once (not connected) is reported
  by the batch's task, before the consumer looks at the next item;
* ``Publish`` and the tracker's domain events — buffered in order and handed to every sink once per
  loop iteration (:meth:`EngineService.flush`, a ``call_soon`` callback, so after any first action):
  the outbox write is the durability point and one SQLite transaction per AMI event was 40 % of the
  consumer's time; ``consume`` (at its end), ``close`` and ``handle`` flush, so nothing is left behind;
* ``Log`` — rendered in the same flush, after the sinks: the decision's log lines (``dtmf.code``, the
  start transition) are not on the DTMF → first-action path;
* ``StartTimer`` / ``CancelTimer`` — ``loop.call_later`` handles.

It also implements the bus's ``CommandHandler``: MQTT commands become engine calls under the same
authorisation as DTMF keys (:mod:`callbridge.runtime.engine_commands`). asyncio only (public API);
no panoramisk, no aiomqtt here. The engine itself (:mod:`callbridge.engine`) never awaits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from callbridge.ami.actions import Action
from callbridge.ami.event_types import AmiEvent
from callbridge.ami.stream import AmiConnected, AmiLost, Resynced
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.engine.authz import agent_name
from callbridge.engine.core import Engine
from callbridge.engine.effects import ActionResult, CancelTimer, Effect, Log, Publish, SendActions, StartTimer
from callbridge.engine.requests import OwedOutcomes
from callbridge.errors import AmiActionError, AmiConnectionLost, AmiOutcomeUnknown, CommandError, UnsafeValueError
from callbridge.runtime.engine_commands import ReloadFn, Routes, engine_routes

if TYPE_CHECKING:
    from callbridge.bus.commands import Command

log = structlog.get_logger("callbridge.engine.service")

EventSink = Callable[[Sequence[DomainEvent]], object]


class AmiSender(Protocol):
    def write_now(self, action: Action) -> Awaitable[object]:
        """Write ``action`` before returning (or raise, nothing written); the result awaits its reply."""
        ...


class EngineService:
    def __init__(
        self,
        engine: Engine,
        tracker: CallTracker,
        ami: AmiSender,
        sinks: Sequence[EventSink] = (),
        *,
        clock: Callable[[], float] = time.time,
        reload: ReloadFn | None = None,
        stage: Callable[[Sequence[DomainEvent]], list[DomainEvent]] | None = None,
    ) -> None:
        """``stage`` sees each batch before the sinks and may add events inside it (the two-centre binder:
        a binding right behind the ``call.queued`` it answers); the sinks get what it returns."""
        self.engine = engine
        self.tracker = tracker
        self.ami = ami
        self.sinks = list(sinks)
        self.stage = stage
        self.clock = clock
        self.routes: Routes = engine_routes(engine, reload)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.actions_sent = 0
        self._pending: list[DomainEvent] = []  # domain events not yet handed to the sinks, in order
        self._pending_logs: list[Log] = []  # the engine's deferred log lines, written by the same flush
        self._loggers: dict[str, Any] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._owed = OwedOutcomes()  # execution results owed to the requesters of commands
        self._reports_due = False  # a batch's outcome is due before the consumer's next item
        self._engine_reads: dict[type[AmiEvent], bool] = {}  # per AMI event class: Engine.reads_itself

    # --- the AMI stream -----------------------------------------------------------------------------

    async def consume(self, stream: AsyncIterator[object]) -> None:
        """Run until the stream ends (the AMI client was closed)."""
        try:
            async for item in stream:
                self._consume_one(item)
                if self._reports_due:
                    await self.let_batches_report()
        finally:
            self.flush()  # the stream ended (stop): nothing stays in the buffer

    async def consume_batches(self, batches: AsyncIterator[Sequence[object]]) -> None:
        """:meth:`consume` for :meth:`AmiClient.batches`: the items of one TCP read at a time, each handled
        as :meth:`consume` handles it (its effects run before the next item is looked at)."""
        consume_one = self._consume_one
        try:
            async for batch in batches:
                for item in batch:
                    consume_one(item)
                    if self._reports_due:
                        await self.let_batches_report()
        finally:
            self.flush()

    async def let_batches_report(self) -> None:
        """Yield once, so the batches just started take their first step: one whose first write failed at
        once reports its outcome now (the others wait for their reply)."""
        self._reports_due = False
        await asyncio.sleep(0)

    def _consume_one(self, item: object) -> None:
        if isinstance(item, AmiEvent):
            self._consume_event(item)
            return
        now = self.clock()
        try:
            if isinstance(item, Resynced):
                self.buffer(self.tracker.resync(list(item.events)))
                self.engine.on_resynced(now)
                self._owed.settle(self.engine.transfers)  # starts that were unknown are decided now
            elif isinstance(item, AmiConnected):
                self.engine.on_connected(f"{item.host}:{item.port}", now)
            elif isinstance(item, AmiLost):
                self.engine.on_lost(item.reason, now)
        except Exception:  # one bad event must not stop call control for everyone else
            log.exception("engine.event_failed", item=type(item).__name__)
        self.run_effects()

    def _consume_event(self, item: AmiEvent) -> None:
        """One AMI event: the tracker applies it; the engine sees it with its domain events, unless it is of a
        kind the engine does not read itself and derived none (most of the stream: no clock, no call, no
        effect run)."""
        cls = type(item)
        engine_reads = self._engine_reads.get(cls)
        if engine_reads is None:
            engine_reads = self._engine_reads[cls] = self.engine.reads_itself(cls)
        try:
            derived = self.tracker.feed(item)
        except Exception:  # the tracker promises not to raise; a bug there must not stop the stream
            log.exception("engine.event_failed", item=cls.__name__)
            return
        if not derived and not engine_reads:
            return
        self.buffer(derived)
        try:
            self.engine.on_ami_event(item, derived, self.clock())
        except Exception:  # one bad event must not stop call control for everyone else
            log.exception("engine.event_failed", item=cls.__name__)
        self.run_effects()

    # --- effects ------------------------------------------------------------------------------------

    def emit(self, events: Sequence[DomainEvent]) -> None:
        """Hand ``events`` to the sinks now (after anything still buffered, so the order holds)."""
        self.buffer(events)
        self.flush()

    def buffer(self, events: Sequence[DomainEvent]) -> None:
        """Queue ``events`` for the next :meth:`flush`, which runs once this loop iteration is done."""
        if not events:
            return
        self._pending.extend(events)
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing would ever run the callback
            self.flush()
            return
        self._flush_handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand every buffered domain event to each sink in one call (one outbox transaction), then write
        the engine's deferred log lines."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending:
            batch, self._pending = self._pending, []
            if self.stage is not None:
                batch = self._staged(batch)
            for sink in self.sinks:
                try:
                    sink(batch)
                except Exception:
                    log.exception("engine.sink_failed", sink=repr(sink))
        if self._pending_logs:
            lines, self._pending_logs = self._pending_logs, []
            for line in lines:
                self._write_log(line)

    def _staged(self, batch: list[DomainEvent]) -> list[DomainEvent]:
        assert self.stage is not None
        try:
            return self.stage(batch)
        except Exception:  # the stage's own fault: the batch goes out as it came
            log.exception("engine.stage_failed", stage=repr(self.stage))
            return batch

    def _write_log(self, line: Log) -> None:
        logger = self._loggers.get(line.logger)
        if logger is None:
            logger = self._loggers[line.logger] = structlog.get_logger(line.logger)
        try:
            logger.info(line.event, **line.fields)
        except Exception:  # a broken log stream must not stop the flush (the sinks were served already)
            log.exception("engine.log_failed", event=line.event)

    def run_effects(self) -> None:
        effects: list[Effect] = self.engine.drain()
        while effects:
            published: list[DomainEvent] = []
            batches: list[SendActions] = []
            for effect in effects:
                if isinstance(effect, Publish):
                    published.append(effect.event)
                elif isinstance(effect, SendActions):
                    batches.append(effect)
                elif isinstance(effect, Log):
                    self._pending_logs.append(effect)
                elif isinstance(effect, StartTimer):
                    self._start_timer(effect.key, effect.seconds)
                elif isinstance(effect, CancelTimer):
                    handle = self._timers.pop(effect.key, None)
                    if handle is not None:
                        handle.cancel()
            # The decision's events are buffered before its batches start: a batch that fails at once
            # (not connected) reports in its first step, and its events must come after these.
            self.buffer(published)
            for batch in batches:
                self._start_batch(batch)
            if (self._pending or self._pending_logs) and self._flush_handle is None:
                self._schedule_flush()
            effects = self.engine.drain()

    def _start_batch(self, batch: SendActions) -> None:
        """Write the batch's first action now (the sinks and log lines wait for the flush, a ``call_soon``
        callback), then hand the rest to a task."""
        first: Awaitable[object] | Exception | None = None
        if batch.actions:
            try:
                first = self.ami.write_now(batch.actions[0])
            except Exception as exc:  # reported by the task: after the decision's events (buffered above)
                first = exc
                self._reports_due = True
        self._spawn(self._send_batch(batch, first))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_timer(self, key: str, seconds: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(seconds, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        try:
            self.engine.on_timer(key, self.clock())
            self._owed.settle(self.engine.transfers)  # a start the timer decided (unknown outcome bounded)
        except Exception:
            log.exception("engine.timer_failed", key=key)
        self.run_effects()

    async def _send_batch(self, batch: SendActions, first: Awaitable[object] | Exception | None) -> None:
        """``first``: the first action's pending reply (written by :meth:`_start_batch`), or why it failed."""
        result = ActionResult(batch.tag, "ok")
        for index, action in enumerate(batch.actions):
            try:
                if index == 0:
                    await _reply_of(first)
                else:
                    await self.ami.write_now(action)
                self.actions_sent += 1
            except AmiOutcomeUnknown as exc:
                result = ActionResult(batch.tag, "unknown", index, str(exc))
            except AmiConnectionLost as exc:
                result = ActionResult(batch.tag, "unavailable", index, str(exc))
            except (AmiActionError, UnsafeValueError) as exc:
                result = ActionResult(batch.tag, "failed", index, str(exc))
            except Exception as exc:
                log.exception("engine.action_crashed", action=action.name)
                result = ActionResult(batch.tag, "failed", index, repr(exc))
            if result.outcome != "ok":
                log.warning("engine.batch_stopped", tag=batch.tag, action=action.name, outcome=result.outcome,
                            error=result.error)  # fmt: skip
                break
        try:
            self.engine.on_action_result(result, self.clock())
        except Exception:
            log.exception("engine.result_failed", tag=batch.tag)
        self._owed.settle(self.engine.transfers, batch.tag, result)
        self.run_effects()

    async def idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  # tests wait for in-flight batches
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self.flush()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    # --- commands (the bus's CommandHandler) ----------------------------------------------------------

    async def handle(self, cmd: Command) -> dict[str, Any]:
        """A command the bus validated (one of its command models, by verb): the engine's answer."""
        body = cmd.body
        call_id: str | None = getattr(body, "call_id", None)
        agent = agent_name(getattr(body, "agent", None) or "")
        try:
            result = await self.routes.dispatch(cmd.verb, body, cmd.scope, self.clock())
        except CommandError as exc:
            self.engine.publish(ev.CommandReceived(ts=self.clock(), call_id=call_id, verb=cmd.verb, agent=agent,
                                                   source="mqtt", outcome=exc.code, reason=str(exc)))  # fmt: skip
            self.run_effects()
            await self._before_reply()
            raise
        self.engine.publish(ev.CommandReceived(ts=self.clock(), call_id=call_id, verb=cmd.verb, agent=agent,
                                               source="mqtt", outcome="ok",
                                               transfer_id=str(result.get("transfer_id", ""))))  # fmt: skip
        self._owed.owe(cmd.follow_up, cmd.verb, result)  # before run_effects: a batch may end at once (AMI down)
        self.run_effects()
        await self._before_reply()
        return result

    async def _before_reply(self) -> None:
        """A command's batches have written their first action (a failed one has reported), then its
        outcome is on the bus before its reply."""
        if self._reports_due:
            await self.let_batches_report()
        self.flush()


async def _reply_of(first: Awaitable[object] | Exception | None) -> object:
    if isinstance(first, Exception):
        raise first
    return await first if first is not None else None
