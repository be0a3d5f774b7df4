"""Retained state topics: payload models and the outbox messages that carry them (pure).

State is published retained at QoS 1 through the outbox like events, but *coalesced*: a newer state
for the same topic replaces an unpublished older one, because a subscriber only needs the latest.
The daemon status (``<p>/status``) is plain text ``online`` / ``offline``; ``offline`` is also the
MQTT last will, so subscribers see a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from callbridge.bus.outbox import OutgoingMessage
from callbridge.bus.topics import Topics

ONLINE = b"online"
OFFLINE = b"offline"


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HotlineState(_State):
    """``state/hotlines/<n>``."""

    hotline: str
    waiting: int = 0
    longest_wait_s: float = 0.0
    agents_free: int = 0
    agents_busy: int = 0
    ts: float


class QueueState(_State):
    """``state/queues/<q>``."""

    queue: str
    hotline: str | None = None
    waiting: int = 0
    longest_wait_s: float = 0.0
    agents_free: int = 0
    agents_busy: int = 0
    ts: float


class AgentState(_State):
    """``state/agents/<a>``."""

    agent: str
    status: Literal["free", "ringing", "busy", "paused", "offline"]
    hotline: str | None = None
    call_id: str | None = None
    ts: float


class ModeState(_State):
    """``state/mode``."""

    mode: str
    since: float


STATE_MODELS: dict[str, type[_State]] = {
    "hotlines/{hotline}": HotlineState,
    "queues/{queue}": QueueState,
    "agents/{agent}": AgentState,
    "mode": ModeState,
}


def encode_state(payload: BaseModel | Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode()
    return orjson.dumps(dict(payload))


def state_message(topics: Topics, suffix: str, payload: BaseModel | Mapping[str, Any] | bytes) -> OutgoingMessage:
    """A retained, coalescing outbox message for ``state/<suffix>`` (empty bytes clears the state)."""
    topic = topics.state(suffix)
    return OutgoingMessage(topic=topic, payload=encode_state(payload), retain=True, kind="state", coalesce_key=topic)
