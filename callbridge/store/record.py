"""The records side's view of an event: type, time, call, hotline and a JSON-safe payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from callbridge.domain import DomainEvent

Statement = tuple[str, tuple[Any, ...]]

#: Transfer outcomes that are final; a late non-final event (ringing, answered) never overwrites them.
FINAL_TRANSFER_OUTCOMES = ("completed", "failed", "returned", "refused")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the records side sees it: type, time, call, hotline and a JSON-safe payload."""

    type: str
    ts: float
    call_id: str | None = None
    hotline: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: DomainEvent | EventRecord) -> EventRecord:
        if isinstance(event, EventRecord):
            return event
        data = event.data()
        data.pop("call_id", None)
        data.pop("hotline", None)
        return cls(type=event.TYPE, ts=float(event.ts), call_id=event.call_id, hotline=event.hotline, data=data)

    def text(self, key: str) -> str | None:
        """A payload value as text (None when missing or empty)."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        return str(value)

    def first(self, *keys: str) -> str | None:
        """The first of several payload keys with a value (event kinds name the same fact differently)."""
        for key in keys:
            if (value := self.text(key)) is not None:
                return value
        return None

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            return float(value)
        except ValueError:
            return None


def to_json(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def caller_of(rec: EventRecord) -> str | None:
    return rec.text("caller_num") or rec.text("caller") or rec.text("number")
