"""Periods as operators type them are read the same whatever the date they are read on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from callbridge.store.periods import iso, parse_instant, parse_period

BERLIN_SUMMER = timezone(timedelta(hours=2))
BERLIN_WINTER = timezone(timedelta(hours=1))


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local zone has summer time (Europe/Berlin: +01:00 in winter, +02:00 in summer)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("now", ["2026-01-15T12:00:00+00:00", "2026-07-15T12:00:00+00:00"], ids=["winter", "summer"])
def test_local_dates_take_their_own_offset_not_todays(berlin: None, now: str) -> None:
    when = datetime.fromisoformat(now).timestamp()
    july = parse_period("2026-07", now=when)
    assert july.start == datetime(2026, 7, 1, tzinfo=BERLIN_SUMMER).timestamp()
    assert iso(july.start) == "2026-07-01T00:00:00+02:00"
    january = parse_period("2026-01-10", now=when)
    assert january.end - january.start == 24 * 3600
    assert parse_instant("2026-01-10T08:00") == datetime(2026, 1, 10, 8, tzinfo=BERLIN_WINTER).timestamp()
    # the day summer time starts has 23 hours
    spring = parse_period("2026-03-29", now=when)
    assert spring.end - spring.start == 23 * 3600


def test_today_and_yesterday_follow_the_clock_given_not_the_machines() -> None:
    tz = timezone(timedelta(hours=8))
    now = datetime(2031, 2, 28, 23, 59, 30, tzinfo=tz).timestamp()
    today, yesterday = parse_period("today", now=now, tz=tz), parse_period("yesterday", now=now, tz=tz)
    assert (today.start, today.end) == (datetime(2031, 2, 28, tzinfo=tz).timestamp(),
                                        datetime(2031, 3, 1, tzinfo=tz).timestamp())  # fmt: skip
    assert yesterday.end == today.start and yesterday.start == datetime(2031, 2, 27, tzinfo=tz).timestamp()
    after_midnight = parse_period("today", now=now + 60, tz=tz)
    assert after_midnight.start == today.end
