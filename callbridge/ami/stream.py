"""The connection items of :meth:`AmiClient.stream`, interleaved with the typed AMI events.

Per TCP session the stream carries ``AmiConnected``, then ``Resynced(events)``, then the live events of
that session, then ``AmiLost(reason)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .event_types import AmiEvent


@dataclass(frozen=True, slots=True)
class AmiConnected:
    """Logged in to ``host:port`` (the resync follows)."""

    host: str
    port: int
    banner: str


@dataclass(frozen=True, slots=True)
class AmiLost:
    """The session ended (``reason``: peer closed, keepalive timeout, client closed …)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resynced:
    """The list events of the post-connect resync (order and content: :mod:`callbridge.ami.resync`)."""

    events: tuple[AmiEvent, ...]


StreamItem = AmiEvent | AmiConnected | AmiLost | Resynced
