"""Hot reload of the dialplan (SIGHUP, a changed file, the ``reload`` command): validate first, swap whole.

An invalid dialplan is logged and published as ``dialplan.rejected`` and the running one stays; a valid one
is installed and handed to the engine, whose transfers in progress keep the rule object they started with.
A reload nobody waits for (a signal, a changed file) never raises: its outcome is logged and published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from callbridge.dialplan.loader import load_dialplan
from callbridge.dialplan.plan import Dialplan
from callbridge.errors import CommandError, ConfigError, LocalError

log = structlog.get_logger("callbridge.app")


class DialplanUser(Protocol):
    """What the reload tells about its outcome (the engine)."""

    @property
    def mode(self) -> str: ...

    def swap_dialplan(self, plan: Dialplan, now: float, *, reason: str = ...) -> None: ...

    def reject_dialplan(self, problems: Sequence[str], now: float, *, reason: str = ...) -> None: ...


def dialplan_mtimes(path: Path) -> dict[str, float]:
    """The modification time of each dialplan file (a directory's ``*.yaml``/``*.yml``, or the one file)."""
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    out: dict[str, float] = {}
    for f in files:
        with contextlib.suppress(OSError):
            out[str(f)] = f.stat().st_mtime_ns / 1e9
    return out


class DialplanReloader:
    """Reloads ``path``: ``install`` receives a valid plan, ``flush`` runs the effects the engine queued."""

    def __init__(
        self,
        path: Path,
        engine: DialplanUser,
        *,
        install: Callable[[Dialplan], None],
        flush: Callable[[], None],
        stopping: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self._engine = engine
        self._install = install
        self._flush = flush
        self._stopping = stopping
        self._clock = clock
        self._mtimes = dialplan_mtimes(path)
        #: reloads started by a signal, not awaited by anyone (cancelled at shutdown)
        self.pending: set[asyncio.Future[None]] = set()

    async def reload(self, reason: str = "command") -> dict[str, Any]:
        """Validate, then swap atomically; an invalid dialplan is rejected and the running one stays."""
        now = self._clock()
        self._mtimes = dialplan_mtimes(self.path)
        try:
            plan = await asyncio.to_thread(load_dialplan, self.path)
        except Exception as exc:  # a loader bug must not kill the reload task or the daemon
            if not isinstance(exc, ConfigError | LocalError):
                log.exception("dialplan.load_failed", reason=reason)
            problems = [str(p) for p in getattr(exc, "problems", ())] or [
                str(exc) if isinstance(exc, LocalError) else f"{self.path}: internal error {exc!r}"
            ]
            log.error("dialplan.rejected", reason=reason, problems=problems[:20])
            self._engine.reject_dialplan(problems, now, reason=reason)
            self._flush()
            raise CommandError("dialplan_invalid", "; ".join(problems[:5])) from None
        if self._stopping():  # the daemon is stopping: the running plan stays until the end
            raise CommandError("stopping", "callbridge is stopping; the dialplan was not reloaded")
        self._install(plan)
        self._engine.swap_dialplan(plan, now, reason=reason)
        log.info("dialplan.reloaded", reason=reason, files=list(plan.sources), mode=self._engine.mode)
        self._flush()
        return {"reloaded": True, "mode": self._engine.mode, "files": list(plan.sources)}

    async def reload_quietly(self, reason: str) -> None:
        """A reload nobody waits for (SIGHUP, a changed file): its outcome is logged and published."""
        try:
            await self.reload(reason)
        except LocalError:
            pass  # already logged and published as dialplan.rejected
        except Exception:  # a bug in loading must not end the daemon: the running plan stays
            log.exception("dialplan.reload_crashed", reason=reason)

    def spawn(self, reason: str) -> None:
        """Start a quiet reload in the background (from a signal handler)."""
        task = asyncio.ensure_future(self.reload_quietly(reason))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def watch(self, interval: float) -> None:
        """Every ``interval`` seconds: reload when a dialplan file changed, appeared or went."""
        while True:
            await asyncio.sleep(interval)
            current = dialplan_mtimes(self.path)
            if current != self._mtimes:
                log.info("dialplan.changed", files=sorted(set(current.items()) ^ set(self._mtimes.items())))
                await self.reload_quietly("file_change")
