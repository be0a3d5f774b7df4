"""The foundations of the typed AMI events: snapshots, the event base classes and their fast constructor.

:mod:`callbridge.ami.event_types` re-exports everything here (import from there, or from
:mod:`callbridge.ami.events`). Kept apart from the event families (``event_types_channel``,
``event_types_queue``, ``event_types_system``) because every family builds on it and it must import none of
them: one class object per event type, defined once.

* Channel snapshots repeat in almost every event, so they are NamedTuples (see :class:`ChannelSnapshot`).
* :func:`install_fast_inits` gives every event class a cheaper ``__init__``; each family module calls it
  once on its own classes after defining them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple


class ChannelSnapshot(NamedTuple):
    """One channel as Asterisk describes it in an event (optionally under a prefix such as ``Dest``).

    A NamedTuple rather than a frozen dataclass on purpose: nearly every event carries one, and a frozen
    dataclass costs ~5x more to build (its ``__init__`` goes through ``object.__setattr__`` per field),
    which dominated decoding. It is just as immutable and has no per-instance ``__dict__``.
    """

    channel: str
    channel_state: str  # numeric AST_STATE as text ("6" = Up)
    state_desc: str  # "Down" | "Ring" | "Ringing" | "Up" | "Busy" …
    caller_num: str  # "" when Asterisk says <unknown>
    caller_name: str
    connected_num: str
    connected_name: str
    context: str
    exten: str
    priority: str  # the *dialplan* priority (never the queue priority)
    uniqueid: str
    linkedid: str

    @property
    def is_local(self) -> bool:
        return self.channel.startswith("Local/")

    @property
    def endpoint(self) -> str:
        """``PJSIP/agent1001-00000004`` → ``agent1001``; ``Local/1002@internal-0007;1`` → ``1002@internal``."""
        return endpoint_of(self.channel)


class BridgeSnapshot(NamedTuple):
    bridge_id: str  # BridgeUniqueid
    bridge_type: str  # "basic" | "base" (ConfBridge) | "holding" …
    technology: str  # "simple_bridge" | "native_rtp" | "softmix" …
    creator: str  # "ConfBridge" for conference rooms
    name: str
    num_channels: int


def endpoint_of(channel: str) -> str:
    """The stable part of a channel name (technology and sequence number removed)."""
    _, _, rest = channel.partition("/")
    if not rest:
        return channel
    rest = rest.rsplit(";", 1)[0]  # the ;1/;2 half of Local and CBAnn channels
    head, dash, tail = rest.rpartition("-")
    # strip() leaves "" exactly when every character is a hex digit (cheaper than all() over a generator).
    return head if dash and tail and not tail.strip("0123456789abcdef") else rest


# --- the events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiEvent:
    """Base of every decoded event. ``timestamp`` is Asterisk's ``Timestamp`` header (timestampevents)."""

    NAME: ClassVar[str] = ""
    timestamp: float | None = None

    @property
    def event_name(self) -> str:
        return self.NAME


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericEvent(AmiEvent):
    """Any event callbridge does not type; headers kept in wire order."""

    name: str
    headers: tuple[tuple[str, str], ...]

    @property
    def event_name(self) -> str:
        return self.name

    def get(self, header: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == header:
                return value
        return default


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(AmiEvent):
    snap: ChannelSnapshot


def _install_fast_init(cls: type) -> None:
    """Replace a frozen slotted dataclass's ``__init__`` by one that writes the slots directly.

    Why: the generated ``__init__`` of a frozen dataclass goes through ``object.__setattr__`` per field,
    which made event construction a third of :func:`decode`'s time. Writing through the slot descriptors
    is the same operation without the detour; instances stay frozen (``__setattr__`` still raises) and
    compare, hash and print exactly as before.
    """
    fields = dataclasses.fields(cls)
    namespace: dict[str, object] = {}
    params = []
    for f in fields:
        namespace["set_" + f.name] = getattr(cls, f.name).__set__
        if f.default is not dataclasses.MISSING:
            namespace["default_" + f.name] = f.default
            params.append(f"{f.name}=default_{f.name}")
        else:
            params.append(f.name)
    body = "".join(f"    set_{f.name}(self, {f.name})\n" for f in fields) or "    pass\n"
    exec(f"def __init__(self, *, {', '.join(params)}):\n{body}", namespace)  # noqa: S102 - built from field names
    cls.__init__ = namespace["__init__"]  # type: ignore[misc]


def install_fast_inits(namespace: dict[str, object], module: str) -> None:
    """Install the fast ``__init__`` on every event class *defined* in ``module`` (its ``globals()``).

    The module's own names, not AmiEvent.__subclasses__(): ``slots=True`` replaces each class by a new one and
    the discarded originals may still be listed there. Classes imported from another module are skipped:
    their own module installed theirs.
    """
    for cls in [c for c in list(namespace.values()) if isinstance(c, type) and issubclass(c, AmiEvent)]:
        if cls.__module__ == module:
            _install_fast_init(cls)


install_fast_inits(globals(), __name__)
