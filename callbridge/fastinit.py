"""Cheaper constructors for the tracker's frozen, slotted domain events and its mutable model (about one
object per AMI event). The AMI events themselves are built by the C framing loop (callbridge.ami.fast) or
with their classes' own constructors (callbridge.ami.decode).

``fast_constructor(Cls)(…)`` returns exactly the object ``Cls(…)`` would (same class, fields, equality,
hash, pickling). Why: the ``__init__`` dataclasses generate for a frozen class sets every field through
``object.__setattr__``; on the hot path that was a quarter of the tracker's cost per AMI event. The
constructor fills an instance of a subclass that adds no slots (so it has the very same memory layout) and
is not frozen (so the slots are stored directly, like those of any plain slotted class), then turns it into
the real class with one ``__class__`` assignment, which Python allows between classes of identical layout.
About 4x cheaper. Generated from the class's own fields, as dataclasses generates ``__init__``.

``fast_constructor``: only for classes without ``__post_init__`` or default factories (refused when built);
``quick_constructor`` serves the mutable classes of the tracker's model. Tests compare every constructor in
use with its class (tests/calls/test_perf_tracker.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


def fast_constructor(cls: Callable[P, T]) -> Callable[P, T]:
    """A callable with ``cls``'s keyword-only signature that builds a ``cls`` instance (see the module doc)."""
    params = []
    env = _environment(cast(type, cls))
    for f in dataclasses.fields(cast(type, cls)):
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    # A plain function, not a class: calling a class with keywords builds a kwargs dict first.
    return cast(Callable[P, T], _generate(cast(type, cls), f"*, {', '.join(params)}", env))


def _environment(cls: type) -> dict[str, Any]:
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__: build it with the class")
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory: build it with the class")
    # Stores into a layout-identical subclass that is not frozen: both hooks must be object's for Python to
    # use its C setattr directly. No slots added, so the finished object may become the class itself.
    unfrozen = type(
        f"{cls.__name__}Unfrozen",
        (cls,),
        {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__, "__module__": __name__},
    )
    return {"_cls": cls, "_unfrozen": unfrozen, "_new": object.__new__}


def quick_constructor(cls: type[T], *names: str) -> Callable[..., T]:
    """For the *mutable* slotted dataclasses of the tracker's model: a function taking the fields ``names``
    positionally that returns what ``cls(**dict(zip(names, args)))`` returns, every other field at its
    default (a fresh one from its factory). Calling the class builds a kwargs dict and binds every default
    in its ``__init__``; this stores each slot directly, as ``__init__`` does (no frozen detour needed)."""
    if hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: build it with the class")
    fields = {f.name: f for f in dataclasses.fields(cast(type, cls))}
    unknown = set(names) - fields.keys()
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")
    env: dict[str, Any] = {"_new": object.__new__, "_unfrozen": cls}
    body = []
    for name, f in fields.items():
        if name in names:
            body.append(f"    o.{name} = {name}")
        elif f.default is not dataclasses.MISSING:
            env[f"_default_{name}"] = f.default
            body.append(f"    o.{name} = _default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_factory_{name}"] = f.default_factory
            body.append(f"    o.{name} = _factory_{name}()")
        else:
            raise TypeError(f"{cls.__name__}.{name} is required: name it")
    return cast(Callable[..., T], _compile(f"new_{cls.__name__}", ", ".join(names), env, body))


def _generate(cls: type, signature: str, env: dict[str, Any]) -> Callable[..., Any]:
    body = [f"    o.{f.name} = {f.name}" for f in dataclasses.fields(cls)]
    return _compile(cls.__name__, signature, env, [*body, "    o.__class__ = _cls"])


def _compile(name: str, signature: str, env: dict[str, Any], body: list[str]) -> Callable[..., Any]:
    """``def build(signature)``: a new ``_unfrozen`` instance, ``body``, returned."""
    source = "\n".join([f"def build({signature}):", "    o = _new(_unfrozen)", *body, "    return o"])
    exec(source, env)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    build: Callable[..., Any] = env["build"]
    build.__name__ = build.__qualname__ = name
    return build
