"""Give memory back to the system after a burst (issue 17.5).

A flood of AMI events leaves a backlog behind it for a while (outbox rows, records waiting for their
batch, domain events): tens of megabytes allocated and freed within seconds. CPython's small-object
allocator returns its arenas once they are empty, but glibc's ``malloc`` keeps what was freed in its own
arenas for the next allocation, so the daemon's RSS stayed at its peak for good (measured: 102 MB after a
10 s flood from 60 MB before; ``malloc_trim(0)`` then brought it to 84 MB at once).

:class:`HeapRelief` looks at the RSS every few seconds and, while it is more than ``slack`` above the
lowest level it has seen, asks glibc to return its free pages (``malloc_trim(0)``, in a worker thread:
ctypes releases the GIL, so the event loop goes on). Where there is no glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger("callbridge.heap")

#: Seconds between two looks at the RSS.
INTERVAL_S = 5.0
#: RSS above the lowest level seen at which a trim is worth its heap walk (bytes).
SLACK = 16 * 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def glibc_trim() -> Callable[[], object] | None:
    """``malloc_trim(0)`` of the C library when it has one (glibc), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


#: The C library's trim, looked up once (None without glibc).
GLIBC_TRIM = glibc_trim()


class HeapRelief:
    """Trims the C heap while the RSS stands ``slack`` above its lowest level; counts its trims."""

    def __init__(self, *, interval_s: float = INTERVAL_S, slack: int = SLACK, rss: Callable[[], int] = rss_bytes,
                 trim: Callable[[], object] | None = GLIBC_TRIM) -> None:  # fmt: skip
        self.interval_s, self.slack = interval_s, slack
        self._rss = rss
        self._trim = trim  # None: nothing to trim with (no glibc)
        self.lowest = 0
        self.trims = 0
        self.released = 0  # bytes of RSS the trims gave back, in all

    @property
    def can_trim(self) -> bool:
        return self._trim is not None

    async def run(self) -> None:
        """Until cancelled."""
        if self._trim is None:
            return
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    async def check(self) -> None:
        """One look: trim when the RSS is ``slack`` above the lowest level seen."""
        before = self._rss()
        if not before:
            return
        if not self.lowest or before < self.lowest:
            self.lowest = before
        if before < self.lowest + self.slack or self._trim is None:
            return
        await asyncio.to_thread(self._trim)
        after = self._rss()
        self.trims += 1
        self.released += max(0, before - after)
        if after and after < self.lowest:
            self.lowest = after
        log.debug("heap.trimmed", rss_before=before, rss_after=after, lowest=self.lowest)


def start_heap_relief(loop: asyncio.AbstractEventLoop) -> asyncio.Task[None] | None:
    """Start a :class:`HeapRelief` on ``loop`` (the daemon's); None where the C library cannot trim."""
    relief = HeapRelief()
    if not relief.can_trim:
        return None
    with contextlib.suppress(RuntimeError):
        return loop.create_task(relief.run(), name="heap relief")
    return None
