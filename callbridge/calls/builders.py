"""Cheaper constructors for the tracker's domain events: ``new.CallAnswered(ts=…, …)`` returns exactly the
object ``ce.CallAnswered(ts=…, …)`` would (same class, fields, equality, hash, pickling).

Why: the tracker emits a domain event for about every fourth AMI event, and the ``__init__`` dataclasses
generate for a frozen class sets every field through ``object.__setattr__`` — about 2 µs per event, a
quarter of the tracker's whole cost per AMI event. A constructor here fills an instance of a subclass that
adds no slots (so it has the very same memory layout) and is not frozen (so the slots are stored directly,
like those of any plain slotted class), then turns it into the real class with one ``__class__``
assignment, which Python allows between classes of identical layout. About 4x cheaper.

Only for classes without ``__post_init__`` or default factories (checked when built); the tracker's tests
compare every constructor with its class (``tests/calls/test_perf_tracker.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from callbridge.calls import events as ce
from callbridge.domain import DomainEvent

P = ParamSpec("P")
E = TypeVar("E", bound=DomainEvent)


def fast_constructor(cls: Callable[P, E]) -> Callable[P, E]:
    """A callable with ``cls``'s keyword-only signature that builds a ``cls`` instance (see the module doc)."""
    event_cls = cast(type[DomainEvent], cls)
    if hasattr(event_cls, "__post_init__"):
        raise TypeError(f"{event_cls.__name__} has __post_init__: build it with the class")
    # Stores into a layout-identical subclass that is not frozen: both hooks must be object's for Python to
    # use its C setattr directly. No slots added, so the finished object may become the event class.
    unfrozen = type(
        f"{event_cls.__name__}Unfrozen",
        (event_cls,),
        {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__, "__module__": __name__},
    )
    env: dict[str, Any] = {"_cls": event_cls, "_unfrozen": unfrozen, "_new": object.__new__}
    params, body = [], []
    for f in dataclasses.fields(event_cls):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{event_cls.__name__}.{f.name} has a default factory: build it with the class")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    o.{f.name} = {f.name}")
    # A plain function, not a class: calling a class with keywords builds a kwargs dict first.
    source = "\n".join([f"def build(*, {', '.join(params)}):", "    o = _new(_unfrozen)", *body,
                        "    o.__class__ = _cls", "    return o"])  # fmt: skip
    exec(source, env)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    build = env["build"]
    build.__name__ = build.__qualname__ = event_cls.__name__
    return cast(Callable[P, E], build)


CallOffered = fast_constructor(ce.CallOffered)
CallQueued = fast_constructor(ce.CallQueued)
CallRinging = fast_constructor(ce.CallRinging)
CallAnswered = fast_constructor(ce.CallAnswered)
CallEnded = fast_constructor(ce.CallEnded)
CallDtmf = fast_constructor(ce.CallDtmf)
QueueJoined = fast_constructor(ce.QueueJoined)
QueueLeft = fast_constructor(ce.QueueLeft)
QueueAbandoned = fast_constructor(ce.QueueAbandoned)
