"""The base of every high-level event callbridge emits (tracker and engine alike).

Every event is a frozen, slotted dataclass with a dotted ``TYPE`` (``call.offered``,
``transfer.completed`` …). The bus turns them into CloudEvents (``type`` = ``org.callbridge.`` + TYPE);
the records store writes them; the wallboard counts them. Subclasses register themselves in
:data:`EVENT_TYPES`, which is what the AsyncAPI document is generated from and checked against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

EVENT_TYPES: dict[str, type[DomainEvent]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    #: Dotted event type, unique per subclass.
    TYPE: ClassVar[str] = ""
    #: Short human description (used in docs/asyncapi.yaml).
    DOC: ClassVar[str] = ""

    ts: float  # seconds since the epoch, from the PBX clock where known
    call_id: str | None = None  # correlation id of the call (stable across transfers)
    hotline: str | None = None  # hotline this event concerns first (topic routing)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Explicit super(): slots=True re-creates the class, which breaks the zero-argument form.
        super(DomainEvent, cls).__init_subclass__(**kwargs)
        type_ = cls.__dict__.get("TYPE", "")
        if type_:
            if type_ in EVENT_TYPES and EVENT_TYPES[type_].__qualname__ != cls.__qualname__:
                raise TypeError(f"duplicate event type {type_!r}")
            EVENT_TYPES[type_] = cls

    def data(self) -> dict[str, Any]:
        """JSON-safe payload: every field but ``ts`` (the envelope carries the time)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "ts":
                continue
            out[f.name] = jsonable(getattr(self, f.name))
        return out

    def also_hotlines(self) -> tuple[str, ...]:
        """Other hotlines that must see this event (e.g. the destination of a transfer)."""
        return ()


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):  # enums
        return value.value
    return value
