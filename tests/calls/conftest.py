"""Fixtures of the tracker tests: quiet logging, and the channels' call shortcut checked after every event."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pytest
import structlog

from callbridge.ami.event_types import AmiEvent
from callbridge.calls.tracker import CallTracker
from callbridge.domain import DomainEvent


@pytest.fixture(autouse=True)
def _quiet_tracker_logs() -> Iterator[None]:
    """The tracker logs every odd event; partial-attach tests would print thousands of lines."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    yield
    structlog.configure(**old)


@pytest.fixture(autouse=True)
def _channels_hold_their_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """After every event and every resync of every tracker test: each channel's ``call`` (the tracker's
    shortcut for ``calls[linkedid]``) is exactly what that look-up gives."""
    feed, resync = CallTracker.feed, CallTracker.resync

    def check(t: CallTracker) -> None:
        for ch in t.channels.values():
            assert ch.call is t.calls.get(ch.linkedid), f"{ch.uniqueid}: call {ch.call} against {ch.linkedid}"

    def checked_feed(self: CallTracker, ev: AmiEvent, now: float | None = None) -> list[DomainEvent]:
        out = feed(self, ev, now)
        check(self)
        return out

    def checked_resync(self: CallTracker, events: Sequence[AmiEvent], now: float | None = None) -> list[DomainEvent]:
        out = resync(self, events, now)
        check(self)
        return out

    monkeypatch.setattr(CallTracker, "feed", checked_feed)
    monkeypatch.setattr(CallTracker, "resync", checked_resync)
