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

Every segment that comes from data (site, hotline, call id, queue, agent, reply-to) is sanitised:
``+``, ``#``, ``/``, NUL and other control characters become ``_`` so data can never widen a
subscription or add topic levels; an empty segment becomes ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from callbridge.domain import DomainEvent

NO_HOTLINE = "_"
_UNSAFE = re.compile(r"[+#/\x00-\x1f\x7f]")


@lru_cache(maxsize=16384)  # every event needs its topics: hotlines, types and live call ids repeat
def sanitise_segment(value: str) -> str:
    """One safe topic level from arbitrary text (never empty, never a wildcard)."""
    cleaned = _UNSAFE.sub("_", value)
    if cleaned.startswith("$"):  # `$` levels are reserved by brokers ($SYS, $share)
        cleaned = "_" + cleaned[1:]
    return cleaned or "_"


@lru_cache(maxsize=1024)
def type_levels(event_type: str) -> str:
    """``transfer.requested`` → ``transfer/requested`` (each part sanitised)."""
    return "/".join(sanitise_segment(part) for part in event_type.split("."))


@lru_cache(maxsize=64)
def _base(root: str, site: str) -> str:
    return f"{sanitise_segment(root)}/{sanitise_segment(site)}"


@lru_cache(maxsize=4096)  # (hotline, type) pairs repeat for every call
def _event_topic(base: str, hotline: str | None, event_type: str) -> str:
    level = sanitise_segment(hotline) if hotline else NO_HOTLINE
    return f"{base}/events/{level}/{type_levels(event_type)}"


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
        return f"{self.base}/calls/{sanitise_segment(call_id)}"

    def for_event(self, event: DomainEvent) -> list[str]:
        """Every topic one event is published on, in a stable order, without duplicates.

        The primary hotline first, then each of :meth:`DomainEvent.also_hotlines` (a transfer to 110
        is published where the 110 software listens), then the per-call topic.
        """
        base = self.base
        topics = [_event_topic(base, event.hotline, event.TYPE)]
        for hotline in event.also_hotlines():
            if hotline:
                topic = _event_topic(base, hotline, event.TYPE)
                if topic not in topics:
                    topics.append(topic)
        if event.call_id:
            topics.append(f"{base}/calls/{sanitise_segment(event.call_id)}")
        return topics

    def events_filter(self, hotline: str = "+") -> str:
        """Subscription filter for every event of one hotline (``+`` = all hotlines)."""
        level = "+" if hotline == "+" else sanitise_segment(hotline)
        return f"{self.base}/events/{level}/#"

    # --- retained state -----------------------------------------------------------------------

    def state(self, suffix: str) -> str:
        """``state/<suffix>``; ``suffix`` levels are sanitised one by one (``hotlines/110``)."""
        levels = "/".join(sanitise_segment(part) for part in suffix.split("/"))
        return f"{self.base}/state/{levels}"

    def hotline_state(self, hotline: str) -> str:
        return f"{self.base}/state/hotlines/{sanitise_segment(hotline)}"

    def queue_state(self, queue: str) -> str:
        return f"{self.base}/state/queues/{sanitise_segment(queue)}"

    def agent_state(self, agent: str) -> str:
        return f"{self.base}/state/agents/{sanitise_segment(agent)}"

    def mode_state(self) -> str:
        return f"{self.base}/state/mode"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    # --- commands -----------------------------------------------------------------------------

    def command(self, verb: str) -> str:
        return f"{self.base}/cmd/{sanitise_segment(verb)}"

    def command_filter(self, shared_group: str | None = None) -> str:
        """``<p>/cmd/+``, or ``$share/<group>/<p>/cmd/+`` so several daemons share the load."""
        plain = f"{self.base}/cmd/+"
        return f"$share/{sanitise_segment(shared_group)}/{plain}" if shared_group else plain

    def verb_of(self, topic: str) -> str | None:
        """The verb of a command topic, or None when the topic is not a command topic of this site."""
        prefix = f"{self.base}/cmd/"
        if not topic.startswith(prefix):
            return None
        verb = topic[len(prefix) :]
        return verb if verb and "/" not in verb else None

    def reply(self, reply_to: str | None) -> str:
        """Fallback reply topic for MQTT 3.1.1 clients (``default`` when they name none)."""
        return f"{self.base}/reply/{sanitise_segment(reply_to) if reply_to else 'default'}"
