"""Instants and periods as operators type them (ISO times, ``today``, ``2026-11``, ``FROM..TO``).

Pure. Naive times are read in the local time zone of the machine (or the ``tz`` given), because that is
the clock the hotline works by; stored times are epoch seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from callbridge.errors import LocalError


class PeriodError(LocalError, ValueError):
    """A time or period could not be read."""

    code = "bad_period"


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open ``[start, end)`` in epoch seconds, with the label it was asked by."""

    label: str
    start: float
    end: float

    def contains(self, ts: float) -> bool:
        return self.start <= ts < self.end


def _aware(moment: datetime, tz: tzinfo | None) -> datetime:
    """A naive time in ``tz``, or in the machine's local zone with the offset *that* date has (summer time
    included) — never the offset of today, so reading a date does not depend on when it is read."""
    return moment.replace(tzinfo=tz) if tz is not None else moment.astimezone()


def parse_instant(text: str, tz: tzinfo | None = None) -> float:
    """``2026-11-29``, ``2026-11-29T08:00``, ``2026-11-29 08:00:00+08:00`` … → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"not an ISO date/time: {text!r} (example: 2026-11-29T08:00)") from exc
    if moment.tzinfo is None:
        moment = _aware(moment, tz)
    return moment.timestamp()


def iso(ts: float | None, tz: tzinfo | None = None) -> str | None:
    """Epoch seconds → ISO 8601 with offset (local time), None stays None."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts).astimezone()
    return moment.isoformat(timespec="seconds")


def _day_start(day: date, tz: tzinfo | None) -> float:
    return _aware(datetime(day.year, day.month, day.day), tz).timestamp()


def parse_period(text: str, *, now: float, tz: tzinfo | None = None) -> Period:
    """``today`` · ``yesterday`` · ``YYYY-MM`` · ``YYYY-MM-DD`` · ``FROM..TO`` (ISO instants; TO exclusive).

    ``now`` is the caller's clock (``today`` and ``yesterday`` are relative to it, never to the machine's)."""
    label = text.strip()
    today = datetime.fromtimestamp(now, tz).date()
    if label == "today":
        return Period(label, _day_start(today, tz), _day_start(today + timedelta(days=1), tz))
    if label == "yesterday":
        return Period(label, _day_start(today - timedelta(days=1), tz), _day_start(today, tz))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"no such month: {label!r}")
        nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return Period(label, _day_start(date(year, month, 1), tz), _day_start(nxt, tz))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label):
        day = date.fromisoformat(label)
        return Period(label, _day_start(day, tz), _day_start(day + timedelta(days=1), tz))
    if ".." in label:
        first, _, last = label.partition("..")
        start, end = parse_instant(first, tz), parse_instant(last, tz)
        if end <= start:
            raise PeriodError(f"period ends before it starts: {label!r}")
        return Period(label, start, end)
    raise PeriodError(f"unknown period {label!r}: use today, yesterday, YYYY-MM, YYYY-MM-DD or FROM..TO")
