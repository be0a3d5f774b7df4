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


def _local_tz(tz: tzinfo | None) -> tzinfo:
    if tz is not None:
        return tz
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def parse_instant(text: str, tz: tzinfo | None = None) -> float:
    """``2026-11-29``, ``2026-11-29T08:00``, ``2026-11-29 08:00:00+08:00`` … → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"not an ISO date/time: {text!r} (example: 2026-11-29T08:00)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_local_tz(tz))
    return moment.timestamp()


def iso(ts: float | None, tz: tzinfo | None = None) -> str | None:
    """Epoch seconds → ISO 8601 with offset (local time), None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, _local_tz(tz)).isoformat(timespec="seconds")


def _day_start(day: date, tz: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def parse_period(text: str, *, now: float, tz: tzinfo | None = None) -> Period:
    """``today`` · ``yesterday`` · ``YYYY-MM`` · ``YYYY-MM-DD`` · ``FROM..TO`` (ISO instants; TO exclusive)."""
    zone = _local_tz(tz)
    label = text.strip()
    today = datetime.fromtimestamp(now, zone).date()
    if label == "today":
        return Period(label, _day_start(today, zone), _day_start(today + timedelta(days=1), zone))
    if label == "yesterday":
        return Period(label, _day_start(today - timedelta(days=1), zone), _day_start(today, zone))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"no such month: {label!r}")
        nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return Period(label, _day_start(date(year, month, 1), zone), _day_start(nxt, zone))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label):
        day = date.fromisoformat(label)
        return Period(label, _day_start(day, zone), _day_start(day + timedelta(days=1), zone))
    if ".." in label:
        first, _, last = label.partition("..")
        start, end = parse_instant(first, zone), parse_instant(last, zone)
        if end <= start:
            raise PeriodError(f"period ends before it starts: {label!r}")
        return Period(label, start, end)
    raise PeriodError(f"unknown period {label!r}: use today, yesterday, YYYY-MM, YYYY-MM-DD or FROM..TO")
