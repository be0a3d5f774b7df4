"""How the daemon's parts are started, watched and stopped without ever waiting forever.

The parts of :class:`callbridge.app.App` run as plain tasks watched by the app (not inside a TaskGroup):
a TaskGroup answers a failing part by cancelling all the others and then waits, without a bound, for
every one of them — and a task built on aiomqtt can swallow its cancellation (on Python 3.11
``asyncio.wait_for`` returns the result when the cancel and the result arrive in the same loop iteration),
so the daemon then hung with its signal handlers still installed, doing nothing with them. Here every part
is asked to stop the way it is meant to (its ``stop()``), every wait has a bound, and a part that does not
finish in time is logged and left behind, never awaited again.

:func:`run_daemon` is the loop runner of ``callbridge run``: :func:`asyncio.run` would, at the very end,
cancel what is left and wait for it without a bound too, and join the executor's threads at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from callbridge.errors import PartFailedError
from callbridge.heap import start_heap_relief

log = structlog.get_logger("callbridge.app")

#: Bound of each closing step (records drain, web server, AMI), seconds.
STEP_S = 8.0
#: What is left after the app returned (tasks, async generators, the executor) gets this long, seconds.
LEFTOVER_S = 2.0


async def settle(tasks: dict[asyncio.Future[Any], str], timeout: float) -> None:  # noqa: ASYNC109 - a bound
    """Wait up to ``timeout`` for ``tasks`` (task → part name) to end; cancel and leave the late ones.

    Exceptions of the ones that ended are retrieved (and logged unless they are cancellations), so no
    "exception was never retrieved" is printed at exit.
    """
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            log.warning("callbridge.part_slow_to_stop", part=tasks[task], waited_s=timeout)
            task.cancel()
    for task, name in tasks.items():
        if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("callbridge.part_stopped_with_error", part=name, error=f"{type(exc).__name__}: {exc}")


async def bounded(name: str, step: Callable[[], Any], timeout: float = STEP_S) -> None:  # noqa: ASYNC109
    """Run one closing step (sync, or returning an awaitable) within ``timeout``; log, never raise."""
    try:
        result = step()
        if isinstance(result, Awaitable):
            task = asyncio.ensure_future(result)
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.warning("callbridge.part_slow_to_stop", part=name, waited_s=timeout)
                task.cancel()
                return
            task.result()
    except Exception:  # keep closing the rest: a half-closed daemon is worse than a logged error
        log.exception("callbridge.close_failed", part=name)


def part_failure(name: str, task: asyncio.Future[Any]) -> PartFailedError:
    """What the end of a part's task means: it failed (its exception) or it ended when it should not."""
    if task.cancelled():
        return PartFailedError(name, "cancelled")
    exc = task.exception()
    if exc is None:
        return PartFailedError(name, "stopped unexpectedly")
    failure = PartFailedError(name, f"{type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


async def say_offline(announce: Callable[[], Coroutine[Any, Any, None]], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Best effort: put ``offline`` on the retained status topic after a start-up failure (bounded)."""
    task = asyncio.ensure_future(announce())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        log.warning("callbridge.offline_not_announced", error=f"no broker answer within {timeout:.0f}s")
    elif not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("callbridge.offline_not_announced", error=f"{type(exc).__name__}: {exc}")


def run_daemon(main: Coroutine[Any, Any, None]) -> bool:
    """Run ``main`` on a new event loop (uvloop's when installed); afterwards give what is left a bounded
    time. Returns False when something could not be ended (a task or an executor thread still running):
    the caller then exits without joining them (``os._exit``)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    start_heap_relief(loop)  # RSS given back after a flood (callbridge/heap.py); ended with the leftovers
    try:
        loop.run_until_complete(main)
    finally:
        clean = _end_leftovers(loop)
        asyncio.set_event_loop(None)
        loop.close()
    return clean and not [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]


def _end_leftovers(loop: asyncio.AbstractEventLoop) -> bool:
    clean = True
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        done, late = loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_S))
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: the part was already reported
        if late:
            clean = False
            log.warning("callbridge.tasks_left_running", tasks=sorted(t.get_name() for t in late))
    for what, shutdown in (("async generators", loop.shutdown_asyncgens), ("executor", _executor_shutdown(loop))):
        try:
            loop.run_until_complete(asyncio.wait_for(shutdown(), LEFTOVER_S))
        except TimeoutError:
            clean = False
            log.warning("callbridge.shutdown_slow", what=what, waited_s=LEFTOVER_S)
    return clean


def _executor_shutdown(loop: asyncio.AbstractEventLoop) -> Callable[[], Coroutine[Any, Any, None]]:
    async def shutdown() -> None:
        with contextlib.suppress(AttributeError, NotImplementedError):  # a loop without a default executor
            await loop.shutdown_default_executor()

    return shutdown


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
        uvloop = importlib.import_module("uvloop")  # optional: only when installed, only for the daemon
    except ImportError:
        return False
    uvloop.install()
    return True
