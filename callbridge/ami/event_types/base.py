"""The foundations of the typed AMI events: snapshots and the event base classes.

Kept apart from the event families (``channel``, ``queue``, ``system``) because every family builds on it
and it imports none of them: one class object per event type, defined once. Channel snapshots repeat in
almost every event, so they are NamedTuples (see :class:`ChannelSnapshot`).
"""

from __future__ import annotations

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
