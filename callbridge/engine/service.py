"""The interpreter around the pure engine: AMI stream in, effects out, results back in.

One consumer reads the AMI client's stream, feeds each event to the tracker and then to the engine,
hands the domain events to the sinks (bus publisher, records) and executes the engine's effects:

* ``SendActions`` — one task per batch, the actions sent in order, stopping at the first failure; the
  outcome goes back as an :class:`ActionResult` (``unknown`` when the connection dropped after writing:
  never re-sent, the engine reconciles after the resync). The task starts eagerly (:func:`start_eagerly`):
  a transfer's first AMI action is written in the loop iteration that decided it, before any log line
  is rendered or event handed to a sink;
* ``Publish`` and the tracker's domain events — buffered in order and handed to every sink once per
  loop iteration (:meth:`EngineService.flush`, a ``call_soon`` callback, so after any first action):
  the outbox write is the durability point and one SQLite transaction per AMI event was 40 % of the
  consumer's time; ``consume`` (at its end), ``close`` and ``handle`` flush, so nothing is left behind;
* ``Log`` — rendered in the same flush, after the sinks: the decision's log lines (``dtmf.code``, the
  start transition) are not on the DTMF → first-action path;
* ``StartTimer`` / ``CancelTimer`` — ``loop.call_later`` handles.

It also implements the bus's ``CommandHandler``: MQTT commands become engine calls under the same
authorisation as DTMF keys. asyncio only; no panoramisk, no aiomqtt here.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, Protocol, TypeVar

import structlog

from callbridge.ami.actions import Action
from callbridge.ami.event_types import AmiEvent
from callbridge.ami.stream import AmiConnected, AmiLost, Resynced
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.engine.authz import agent_name
from callbridge.engine.effects import ActionResult, CancelTimer, Effect, Log, Publish, SendActions, StartTimer
from callbridge.engine.requests import OwedOutcomes, check_scope, command_hotline
from callbridge.engine.runtime import Engine, TransferRequest
from callbridge.errors import AmiActionError, AmiConnectionLost, AmiOutcomeUnknown, CommandError, UnsafeValueError

log = structlog.get_logger("callbridge.engine.service")

EventSink = Callable[[Sequence[DomainEvent]], object]
ReloadFn = Callable[[str], Awaitable[dict[str, Any]]]


class AmiSender(Protocol):
    async def send(self, action: Action) -> object: ...


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
    ) -> None:
        self.engine = engine
        self.tracker = tracker
        self.ami = ami
        self.sinks = list(sinks)
        self.clock = clock
        self.reload_fn = reload
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.actions_sent = 0
        self._pending: list[DomainEvent] = []  # domain events not yet handed to the sinks, in order
        self._pending_logs: list[Log] = []  # the engine's deferred log lines, written by the same flush
        self._loggers: dict[str, Any] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._owed = OwedOutcomes()  # execution results owed to the requesters of commands

    # --- the AMI stream -----------------------------------------------------------------------------

    async def consume(self, stream: AsyncIterator[object]) -> None:
        """Run until the stream ends (the AMI client was closed)."""
        try:
            async for item in stream:
                self._consume_one(item)  # a batch it starts has written its first action on return
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
        finally:
            self.flush()

    def _consume_one(self, item: object) -> None:
        now = self.clock()
        try:
            if isinstance(item, AmiEvent):
                derived = self.tracker.feed(item)
                self.buffer(derived)
                self.engine.on_ami_event(item, derived, now)
            elif isinstance(item, Resynced):
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
            for sink in self.sinks:
                try:
                    sink(batch)
                except Exception:
                    log.exception("engine.sink_failed", sink=repr(sink))
        if self._pending_logs:
            lines, self._pending_logs = self._pending_logs, []
            for line in lines:
                self._write_log(line)

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
            if self._pending_logs and self._flush_handle is None:
                self._schedule_flush()
            for batch in batches:
                self._start_batch(self._send_batch(batch))
            effects = self.engine.drain()

    def _start_batch(self, coro: Coroutine[Any, Any, None]) -> None:
        task = start_eagerly(coro)  # its first action is written now, not in the next loop iteration
        if not task.done():
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
        except Exception:
            log.exception("engine.timer_failed", key=key)
        self.run_effects()

    async def _send_batch(self, batch: SendActions) -> None:
        result = ActionResult(batch.tag, "ok")
        for index, action in enumerate(batch.actions):
            try:
                await self.ami.send(action)
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

    async def handle(self, cmd: Any) -> dict[str, Any]:
        """``cmd`` is a :class:`callbridge.bus.commands.Command` (``verb``, ``body``)."""
        verb: str = cmd.verb
        body: Any = cmd.body
        agent = agent_name(getattr(body, "agent", None) or "")
        try:
            result = await self._dispatch(verb, body, getattr(cmd, "scope", None))
        except CommandError as exc:
            self.engine.publish(ev.CommandReceived(ts=self.clock(), call_id=getattr(body, "call_id", None),
                                                   verb=verb, agent=agent, source="mqtt", outcome=exc.code,
                                                   reason=str(exc)))  # fmt: skip
            self.run_effects()
            self.flush()  # a command's outcome is on the bus before its reply
            raise
        self.engine.publish(ev.CommandReceived(ts=self.clock(), call_id=getattr(body, "call_id", None), verb=verb,
                                               agent=agent, source="mqtt", outcome="ok",
                                               transfer_id=str(result.get("transfer_id", ""))))  # fmt: skip
        self._owed.owe(cmd, verb, result)  # before run_effects: a batch may end at once (AMI down)
        self.run_effects()
        self.flush()
        return result

    async def _dispatch(self, verb: str, b: Any, scope: frozenset[str] | None = None) -> dict[str, Any]:
        e, now = self.engine, self.clock()
        if scope is not None and verb not in ("transfer", "three_way"):  # transfers: checked with the grant
            call_id = getattr(b, "call_id", None)
            running = e.transfers.get(getattr(b, "transfer_id", None) or "") or (call_id and e.active_on_call(call_id))
            if verb != "status" or b.hotline is not None:
                check_scope(scope, command_hotline(self.tracker, verb, b, running or None), verb)
        if verb in ("transfer", "three_way"):
            if verb == "three_way" and not b.to_hotline:
                raise CommandError("invalid", "three_way needs to_hotline")
            # a transfer without "mode" takes the rule's (as the DTMF key does), not the schema's default
            mode = "threeway" if verb == "three_way" else (b.mode if "mode" in b.model_fields_set else None)
            req = TransferRequest(
                call_id=b.call_id, agent=b.agent, to_hotline=b.to_hotline,
                mode=mode, category=b.category, ticket=b.ticket or "",
                summary=b.summary or "", idempotency_key=b.idempotency_key, source="command", scope=scope,
            )  # fmt: skip
            return e.request_transfer(req, now)
        if verb == "complete":
            return e.complete(b.call_id, b.agent, b.transfer_id, now)
        if verb == "cancel":
            return e.cancel(b.call_id, b.agent, b.transfer_id, now)
        if verb == "leave":
            return e.leave(b.call_id, b.agent, now)
        if verb == "set_priority":
            return e.set_priority(b.call_id, b.priority, now, agent=b.agent, reason=b.reason or "")
        if verb == "set_mode":
            return e.set_mode(b.mode, now, reason=b.reason or "command", agent=b.agent or "")
        if verb == "reload":
            if self.reload_fn is None:
                raise CommandError("unsupported", "reload is not available in this process")
            return await self.reload_fn("command")
        if verb == "status":
            status = e.status(call_id=b.call_id, hotline=b.hotline)
            if scope is not None:  # a key limited to some hotlines sees their transfers only
                status["transfers"] = [t for t in status["transfers"] if {t["from_hotline"], t["to_hotline"]} & scope]
            return status
        raise CommandError("unknown_verb", f"unknown verb {verb!r}")


# --- eager batch start ------------------------------------------------------------------------------
#
# Every batch of AMI actions runs as a task (it awaits each reply before the next action), and a task's
# first step normally runs in the *next* loop iteration — after the loop polled the AMI socket again and
# framed, decoded and tracked whatever arrived meanwhile. For a one-key transfer that first step writes
# the first AMI action, and the budget (DTMF arrival → first action written, p99 < 2 ms at 5,000 calls)
# has no room for another iteration. On 3.12+ this is ``asyncio.Task(..., eager_start=True)``; on 3.11
# it is done by hand: the task is created (its first scheduled step only *returns* what the eager step
# produced) and the coroutine's first step runs now with the task as the current task, so what binds to
# ``asyncio.current_task()`` in that step (``asyncio.timeout`` in the AMI client) binds to the new task,
# never to the caller's.

T = TypeVar("T")


def start_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run ``coro`` up to its first suspension now; the rest runs as an ordinary task (returned)."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    resumed = _FirstStepDone(coro)
    context = contextvars.copy_context()  # the task's own context, as for any task; the first step too
    task: asyncio.Task[T] = loop.create_task(resumed, context=context)
    outer = asyncio.current_task(loop)
    if outer is not None:
        asyncio.tasks._leave_task(loop, outer)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(resumed.run_first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if outer is not None:
            asyncio.tasks._enter_task(loop, outer)
    return task


class _FirstStepDone(Coroutine[Any, Any, T]):
    """Wraps a coroutine whose first step runs outside the task: the task's first ``send`` gets that
    step's outcome (what it awaits, its result or its exception); everything after goes to the coroutine.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._first: tuple[str, Any] | None = None

    def run_first_step(self) -> None:
        try:
            self._first = ("await", self._coro.send(None))
        except StopIteration as stop:
            self._first = ("return", stop.value)
        except BaseException as exc:  # delivered by the task's first step, as asyncio does
            self._first = ("raise", exc)

    def send(self, value: Any) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        kind, outcome = first
        if kind == "await":
            return outcome
        if kind == "return":
            raise StopIteration(outcome)
        raise outcome

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        first, self._first = self._first, None
        if first is not None and first[0] != "await":
            raise typ if val is None else val  # the coroutine already finished in its first step
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # pragma: no cover  # asyncio throws the exception alone

    def close(self) -> None:
        self._first = None
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:  # pragma: no cover  # only ever driven by its task
        raise TypeError("driven by its task only")
