"""The MQTT topic scheme (pure: strings in, strings out).

Layout, with ``<p>`` = ``callbridge/<site>``::

    <p>/events/<hotline>/<type/with/slashes>   every domain event, once per hotline that must see it
    <p>/calls/<call-id>                        every event of one call (one subscription = one call)
    <p>/state/hotlines/<n>                     retained hotline state
    <p>/state/queues/<q>                       retained queue state
    <p>/state/agents/<a>                       retained agent state
    <p>/state/mode                             retained active mode
    <p>/status                                 retained ``online`` / ``offline`` (also the last will)
    <p>/cmd/<verb>                             commands in
    <p>/reply/<reply-to>                       replies for MQTT 3.1.1 clients (no response topic)

The event type's dots become topic levels (``transfer.requested`` → ``transfer/requested``) so that
``<p>/events/110/transfer/#`` selects every transfer event of hotline 110 and
``<p>/events/+/call/ended`` every ended call. Events without a hotline use the level ``_``.

Topics are built only from validated parts: every level that comes from data (site, hotline, call id,
queue, agent, mode, reply-to, event type) must match :data:`callbridge.bus.idents.TOPIC_LEVEL` (ASCII
letters, digits and ``_ . @ : = ~ -``; no wildcard, no ``/``, no leading ``$``) or :func:`topic_part`
raises :class:`UnsafeTopicPart`, so data can never widen a subscription, add levels, or carry a character
a broker drops the connection for. An event whose hotline is not a valid level is published under
``_`` (no hotline) and one whose call id is not is left off the per-call topic, with a warning: the event
itself is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import structlog

from callbridge.bus.idents import TOPIC_LEVEL, is_topic_level
from callbridge.domain import DomainEvent
from callbridge.errors import LocalError

log = structlog.get_logger("callbridge.bus.topics")

NO_HOTLINE = "_"


class UnsafeTopicPart(LocalError, ValueError):
    """A value that is not a valid topic level (see :data:`callbridge.bus.idents.TOPIC_LEVEL`)."""

    code = "unsafe_topic_part"

    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(f"not a valid topic level ({TOPIC_LEVEL}): {value[:80]!r}")


@lru_cache(maxsize=16384)  # every event needs its topics: hotlines, types and live call ids repeat
def topic_part(value: str) -> str:
    """``value`` itself when it is a valid topic level; raises :class:`UnsafeTopicPart` otherwise."""
    if not is_topic_level(value):
        raise UnsafeTopicPart(value)
    return value


@lru_cache(maxsize=1024)
def type_levels(event_type: str) -> str:
    """``transfer.requested`` → ``transfer/requested`` (each part a valid level)."""
    return "/".join(topic_part(part) for part in event_type.split("."))


@lru_cache(maxsize=64)
def _base(root: str, site: str) -> str:
    return f"{topic_part(root)}/{topic_part(site)}"


@lru_cache(maxsize=4096)  # (hotline, type) pairs repeat for every call
def _event_topic(base: str, hotline: str | None, event_type: str) -> str:
    level = topic_part(hotline) if hotline else NO_HOTLINE
    return f"{base}/events/{level}/{type_levels(event_type)}"


def _hotline_topic(base: str, hotline: str | None, event: DomainEvent) -> str:
    """The event's topic for ``hotline``; under ``_`` when the hotline is not a valid level."""
    try:
        return _event_topic(base, hotline, event.TYPE)
    except UnsafeTopicPart:
        log.warning("topic.unsafe_hotline", type=event.TYPE, hotline=repr(hotline)[:80])
        return _event_topic(base, None, event.TYPE)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one site (one daemon, or several sharing a site via shared subscriptions)."""

    site: str
    root: str = "callbridge"

    @property
    def base(self) -> str:
        return _base(self.root, self.site)

    # --- events -------------------------------------------------------------------------------

    def event(self, hotline: str | None, event_type: str) -> str:
        return _event_topic(self.base, hotline, event_type)

    def call(self, call_id: str) -> str:
        return f"{self.base}/calls/{topic_part(call_id)}"

    def for_event(self, event: DomainEvent) -> list[str]:
        """Every topic one event is published on, in a stable order, without duplicates.

        The primary hotline first, then each of :meth:`DomainEvent.also_hotlines` (a transfer to 110
        is published where the 110 software listens), then the per-call topic.
        """
        base = self.base
        topics = [_hotline_topic(base, event.hotline, event)]
        for hotline in event.also_hotlines():
            if hotline:
                topic = _hotline_topic(base, hotline, event)
                if topic not in topics:
                    topics.append(topic)
        call_id = event.call_id
        if call_id:
            try:
                topics.append(f"{base}/calls/{topic_part(call_id)}")
            except UnsafeTopicPart:
                log.warning("topic.unsafe_call_id", type=event.TYPE, call_id=repr(call_id)[:80])
        return topics

    def events_filter(self, hotline: str = "+") -> str:
        """Subscription filter for every event of one hotline (``+`` = all hotlines)."""
        level = "+" if hotline == "+" else topic_part(hotline)
        return f"{self.base}/events/{level}/#"

    # --- retained state -----------------------------------------------------------------------

    def state(self, suffix: str) -> str:
        """``state/<suffix>``; each level of ``suffix`` must be valid (``hotlines/110``)."""
        levels = "/".join(topic_part(part) for part in suffix.split("/"))
        return f"{self.base}/state/{levels}"

    def hotline_state(self, hotline: str) -> str:
        return f"{self.base}/state/hotlines/{topic_part(hotline)}"

    def queue_state(self, queue: str) -> str:
        return f"{self.base}/state/queues/{topic_part(queue)}"

    def agent_state(self, agent: str) -> str:
        return f"{self.base}/state/agents/{topic_part(agent)}"

    def mode_state(self) -> str:
        return f"{self.base}/state/mode"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    # --- commands -----------------------------------------------------------------------------

    def command(self, verb: str) -> str:
        return f"{self.base}/cmd/{topic_part(verb)}"

    def command_filter(self, shared_group: str | None = None) -> str:
        """``<p>/cmd/+``, or ``$share/<group>/<p>/cmd/+`` so several daemons share the load."""
        plain = f"{self.base}/cmd/+"
        return f"$share/{topic_part(shared_group)}/{plain}" if shared_group else plain

    def verb_of(self, topic: str) -> str | None:
        """The verb of a command topic, or None when the topic is not a command topic of this site."""
        prefix = f"{self.base}/cmd/"
        if not topic.startswith(prefix):
            return None
        verb = topic[len(prefix) :]
        return verb if verb and "/" not in verb else None

    def reply(self, reply_to: str | None) -> str:
        """Fallback reply topic for MQTT 3.1.1 clients (``default`` when they name none; raises for an
        unsafe ``reply_to``, which the command models refuse first)."""
        return f"{self.base}/reply/{topic_part(reply_to) if reply_to else 'default'}"
