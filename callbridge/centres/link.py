"""The pure part of the link between two centres' daemons over a shared (bridged) broker.

Each daemon publishes on its own site's topics as always (``<root>/<site>/events/<hotline>/...``); the
broker bridge (or the cluster) carries them to the other centre. A daemon with ``centres.peer_site``
subscribes to the peer's hand-over events published under *its own* hotlines (a transfer is published
under its destination too, feedback and bindings under the sending hotline) and takes them in: the
hand-over data (screen pop, binding), the outcomes (records: the pair's transfers with both outcomes)
and the feedback (the loop). Taken-in events go to the binder, the feedback desk, the records and the
console — never back to the bus (they are the peer's: no echo between the centres).

Everything from the peer is checked like a command from outside: the envelope's source must be the
peer, the type one of :data:`TAKEN`, every identifier within its alphabet (:mod:`callbridge.bus.idents`),
free text free of controls; anything else is refused with a reason (logged by the adapter).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from datetime import datetime
from typing import Any

from callbridge.bus import idents
from callbridge.bus.envelope import TYPE_PREFIX, decode
from callbridge.domain import EVENT_TYPES, DomainEvent
from callbridge.errors import RemoteError

#: The peer's event types taken in (the families: every transfer step, and the loop's events).
FAMILIES = ("transfer.", "handover.")
#: Fields checked against an identifier alphabet (empty is always allowed).
_IDENTS: dict[str, str] = {
    "call_id": idents.CALL_ID, "remote_call_id": idents.CALL_ID, "hotline": idents.HOTLINE,
    "from_hotline": idents.HOTLINE, "to_hotline": idents.HOTLINE, "transfer_id": idents.KEY,
    "agent": idents.AGENT, "sender": idents.AGENT, "category": idents.CATEGORY, "ticket": idents.TICKET,
    "channel": idents.CHANNEL, "answered_by": idents.CHANNEL, "answered_agent": idents.AGENT,
}  # fmt: skip
_COMPILED = {k: re.compile(v) for k, v in _IDENTS.items()}
_TEXT = re.compile(idents.TEXT_PATTERN)
_MAX_TEXT = 4000


class PeerEventRefused(RemoteError):
    """A message on a peer topic that is not a valid peer hand-over event (the reason says why)."""


def peer_filters(root: str, peer_site: str, hotlines: frozenset[str]) -> list[str]:
    """The subscriptions of the link: the peer's hand-over events under each of our hotlines."""
    base = f"{root}/{peer_site}/events"
    return [f"{base}/{h}/{family.rstrip('.')}/#" for h in sorted(hotlines) for family in FAMILIES]


def peer_event(payload: bytes, *, peer_site: str) -> tuple[str, DomainEvent]:
    """The envelope's id and its domain event; raises :class:`PeerEventRefused`."""
    try:
        env = decode(payload)
    except ValueError as exc:
        raise PeerEventRefused(str(exc)) from None
    if env.get("source") != f"callbridge/{peer_site}":
        raise PeerEventRefused(f"source {str(env.get('source'))[:80]!r} is not the peer {peer_site!r}")
    ce_type = str(env.get("type") or "")
    event_type = ce_type.removeprefix(TYPE_PREFIX)
    cls = EVENT_TYPES.get(event_type)
    if not ce_type.startswith(TYPE_PREFIX) or cls is None or not event_type.startswith(FAMILIES):
        raise PeerEventRefused(f"type {ce_type[:80]!r} is not a hand-over event")
    data = env.get("data")
    if not isinstance(data, dict):
        raise PeerEventRefused("no data")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "ts"}
    kwargs = {k: _checked(k, v) for k, v in data.items() if k in fields}
    try:
        ts = datetime.fromisoformat(str(env.get("time") or "")).timestamp()
        event: DomainEvent = cls(ts=ts, **kwargs)
    except (TypeError, ValueError) as exc:
        raise PeerEventRefused(f"{event_type}: {exc}") from None
    return str(env.get("id") or ""), event


def _checked(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        raise PeerEventRefused(f"{name}: not a plain value")
    pattern = _COMPILED.get(name)
    if value and pattern is not None and pattern.fullmatch(value) is None:
        raise PeerEventRefused(f"{name}: {value[:80]!r} outside its alphabet")
    if len(value) > _MAX_TEXT or _TEXT.fullmatch(value) is None:
        raise PeerEventRefused(f"{name}: not free text")
    return value


class SeenIds:
    """Envelope ids already taken in (a QoS 1 redelivery, the same event under two hotlines)."""

    def __init__(self, remember: int = 20_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def first_time(self, event_id: str) -> bool:
        if not event_id or event_id in self._ids:
            return not event_id
        self._ids[event_id] = None
        while len(self._ids) > self._remember:
            self._ids.popitem(last=False)
        return True
