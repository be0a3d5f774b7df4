"""A clock for tests whose "today" must not depend on the date (or the hour) they run at.

``steady_clock(start)`` reads ``start`` plus the real time elapsed since it was made (monotonic), so
timers, waits and durations run as usual while the day is always ``start``'s: a test started at 23:59:50,
or under ``faketime``, never sees midnight pass in the middle of its day. Give it to whatever takes a clock
(``App(clock=…)``, ``WebServer(clock=…)``) and compute periods from it, not from ``time.time()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

#: 2026-11-29 12:00 at UTC+8 (the hotlines' zone): noon, far from both midnights in any time zone within ±11 h.
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=timezone(timedelta(hours=8))).timestamp()


def steady_clock(start: float = NOON) -> Callable[[], float]:
    origin = time.monotonic()
    return lambda: start + (time.monotonic() - origin)
