"""The interpreter around the pure engine: AMI stream in, effects out, results back in.

One consumer reads the AMI client's stream, feeds each event to the tracker and then to the engine,
hands the domain events to the sinks (bus publisher, records) and executes the engine's effects:

* ``SendActions`` — one task per batch, the actions sent in order, stopping at the first failure; the
  outcome goes back as an :class:`ActionResult` (``unknown`` when the connection dropped after writing:
  never re-sent, the engine reconciles after the resync);
* ``Publish`` and the tracker's domain events — buffered in order and handed to every sink once per
  loop iteration (:meth:`EngineService.flush`): the outbox write is the durability point and one SQLite
  transaction per AMI event was 40 % of the consumer's time. The flush is scheduled *after* any action
  batch spawned in the same iteration, so a transfer's first AMI action is never behind the outbox;
  ``consume`` (at its end), ``close`` and ``handle`` flush, so nothing is left behind on stop;
* ``StartTimer`` / ``CancelTimer`` — ``loop.call_later`` handles.

It also implements the bus's ``CommandHandler``: MQTT commands become engine calls under the same
authorisation as DTMF keys. asyncio only; no panoramisk, no aiomqtt here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog

from callbridge.ami.actions import Action
from callbridge.ami.event_types import AmiEvent
from callbridge.ami.stream import AmiConnected, AmiLost, Resynced
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent
from callbridge.engine import events as ev
from callbridge.engine.authz import agent_name
from callbridge.engine.effects import ActionResult, CancelTimer, Effect, Publish, SendActions, StartTimer
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
        self._flush_handle: asyncio.Handle | None = None
        self._spawned = 0  # action batches started (the consumer yields after an event that started one)

    # --- the AMI stream -----------------------------------------------------------------------------

    async def consume(self, stream: AsyncIterator[object]) -> None:
        """Run until the stream ends (the AMI client was closed)."""
        try:
            async for item in stream:
                spawned = self._spawned
                self._consume_one(item)
                if self._spawned != spawned:
                    # The stream hands over everything already read without suspending; yield once so
                    # the new batch writes its first action now, not after the rest of the backlog.
                    await asyncio.sleep(0)
        finally:
            self.flush()  # the stream ended (stop): nothing stays in the buffer

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
        """Hand every buffered domain event to each sink in one call (one outbox transaction)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        for sink in self.sinks:
            try:
                sink(batch)
            except Exception:
                log.exception("engine.sink_failed", sink=repr(sink))

    def run_effects(self) -> None:
        effects: list[Effect] = self.engine.drain()
        while effects:
            published: list[DomainEvent] = []
            for effect in effects:
                if isinstance(effect, Publish):
                    published.append(effect.event)
                elif isinstance(effect, SendActions):
                    self._spawn(self._send_batch(effect))
                    if self._flush_handle is not None:
                        # behind the batch's first step, which writes its first action: a transfer
                        # never waits for the outbox transaction
                        self._flush_handle.cancel()
                        self._flush_handle = None
                        self._schedule_flush()
                elif isinstance(effect, StartTimer):
                    self._start_timer(effect.key, effect.seconds)
                elif isinstance(effect, CancelTimer):
                    handle = self._timers.pop(effect.key, None)
                    if handle is not None:
                        handle.cancel()
            self.buffer(published)
            effects = self.engine.drain()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._spawned += 1
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
            result = await self._dispatch(verb, body)
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
        self.run_effects()
        self.flush()
        return result

    async def _dispatch(self, verb: str, b: Any) -> dict[str, Any]:
        e, now = self.engine, self.clock()
        if verb in ("transfer", "three_way"):
            if verb == "three_way" and not b.to_hotline:
                raise CommandError("invalid", "three_way needs to_hotline")
            req = TransferRequest(
                call_id=b.call_id, agent=b.agent, to_hotline=b.to_hotline,
                mode="threeway" if verb == "three_way" else b.mode, category=b.category, ticket=b.ticket or "",
                summary=b.summary or "", idempotency_key=b.idempotency_key, source="command",
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
            return e.status(call_id=b.call_id, hotline=b.hotline)
        raise CommandError("unknown_verb", f"unknown verb {verb!r}")
