"""CloudEvents 1.0 envelopes (structured JSON mode), built with orjson. Pure: no I/O.

Every domain event becomes one envelope; the same bytes are published on every topic the event goes
to and are stored in the outbox, so a redelivery after a reconnect or a restart carries the *same*
``id`` and a subscriber can de-duplicate on it.

Attributes: ``specversion`` "1.0", ``id`` (a UUIDv7: unique, time-ordered), ``source``
``callbridge/<site>``, ``type`` ``org.callbridge.<TYPE>``, ``time`` (RFC 3339, UTC, from the event's
``ts``), ``subject`` (the call id when there is one), ``datacontenttype`` ``application/json``,
``data`` (:meth:`DomainEvent.data`), and the extension attributes ``callid``, ``hotline`` (when set)
and ``seq`` (a per-site integer that increases with every event this daemon emits; it survives
restarts through the outbox, so a subscriber can check the order of one call's events).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from callbridge.domain import DomainEvent

SPECVERSION = "1.0"
TYPE_PREFIX = "org.callbridge."
CONTENT_TYPE = "application/json"


#: Random bytes drawn ahead (one ``os.urandom`` per ~400 ids instead of one system call per event);
#: emptied in a forked child, so parent and child never hand out the same bytes.
_RANDOM_POOL_BYTES = 4096
_pool: list[Any] = [b"", 0]
os.register_at_fork(after_in_child=lambda: _pool.__setitem__(slice(None), [b"", 0]))


def _random10() -> bytes:
    data, pos = _pool
    if pos + 10 > len(data):
        data, pos = os.urandom(_RANDOM_POOL_BYTES), 0
        _pool[0] = data
    _pool[1] = pos + 10
    return data[pos : pos + 10]  # type: ignore[no-any-return]


def uuid7(now_ms: int | None = None) -> str:
    """A version-7 UUID (48-bit Unix milliseconds + 74 random bits), as in RFC 9562."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    r = _random10()
    # ms (48 bits) | version 7 + rand_a (12 bits) | variant 0b10 + rand_b (62 bits), as bytes: the
    # canonical form without building a uuid.UUID (hot path: every event)
    middle = bytes((0x70 | r[0] & 0x0F, r[1], 0x80 | r[2] & 0x3F))
    h = ((ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + middle + r[3:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_last_second: list[Any] = [None, ""]  # (whole second, "YYYY-MM-DDTHH:MM:SS") of the previous call


def rfc3339(ts: float) -> str:
    # Events come in bursts within the same second: format the date part once per second.
    # Rounded to microseconds (half-even) then truncated to milliseconds, exactly as
    # datetime.fromtimestamp(ts).isoformat(timespec="milliseconds") does.
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    if _last_second[0] != second:
        _last_second[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_last_second[1]}.{micros // 1000:03d}Z"


_PLAIN = frozenset({str, int, float, bool, type(None)})
#: Per event class: (field names but ``ts``, a getter of their values), or None when the class
#: overrides ``data()``.
_DATA_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], Any]] | None] = {}


def _data(event: DomainEvent) -> dict[str, Any]:
    """``event.data()``, without its generic per-value conversion when every value is plain JSON."""
    cls = type(event)
    try:
        spec = _DATA_FIELDS[cls]
    except KeyError:
        overridden = getattr(cls, "data", None) is not DomainEvent.data
        names = tuple(f.name for f in dataclasses.fields(event) if f.name != "ts")
        spec = None if overridden or len(names) < 2 else (names, operator.attrgetter(*names))
        _DATA_FIELDS[cls] = spec
    if spec is None:
        return event.data()
    names, values_of = spec
    values = values_of(event)  # a tuple: at least two names (call_id, hotline)
    if _PLAIN.issuperset(map(type, values)):
        return dict(zip(names, values, strict=True))
    return event.data()  # enums, tuples, nested dataclasses…: the general conversion


@dataclass(frozen=True, slots=True)
class Envelope:
    """One encoded CloudEvent: its id, its per-site sequence number, and the JSON bytes."""

    id: str
    seq: int
    type: str
    payload: bytes


#: Per (event TYPE, site): the constant middle of the envelope, rendered once (``source``, ``type``).
_MIDDLES: dict[tuple[str, str], tuple[str, bytes]] = {}
_HEAD = b'{"specversion":"1.0","id":"'
_AFTER_TIME = b'","datacontenttype":"application/json","seq":'


def _middle(event_type: str, site: str) -> tuple[str, bytes]:
    ce_type = TYPE_PREFIX + event_type
    rendered = b'","source":' + orjson.dumps("callbridge/" + site) + b',"type":' + orjson.dumps(ce_type) + b',"time":"'
    if len(_MIDDLES) < 4096:  # types x sites: a handful; bounded all the same
        _MIDDLES[(event_type, site)] = (ce_type, rendered)
    return ce_type, rendered


def build(event: DomainEvent, *, site: str, seq: int, event_id: str | None = None) -> Envelope:
    """The envelope of ``event``: the same bytes as ``orjson.dumps`` of the attribute dict (keys in the
    order of :data:`ENVELOPE_SCHEMA`'s description), with the constant parts rendered once per type and
    site, and only the event's own strings (call id, hotline, data) encoded per event."""
    ce_type, middle = _MIDDLES.get((event.TYPE, site)) or _middle(event.TYPE, site)
    eid = event_id or uuid7()
    parts = [_HEAD, eid.encode(), middle, rfc3339(event.ts).encode(), _AFTER_TIME, b"%d" % seq]
    call_id = event.call_id
    if call_id:
        quoted = orjson.dumps(call_id)
        parts += (b',"subject":', quoted, b',"callid":', quoted)
    if event.hotline:
        parts += (b',"hotline":', orjson.dumps(event.hotline))
    parts += (b',"data":', orjson.dumps(_data(event)), b"}")
    return Envelope(id=eid, seq=seq, type=ce_type, payload=b"".join(parts))


def decode(payload: bytes | str) -> dict[str, Any]:
    """Parse an envelope (for subscribers, tests and the demo); raises ValueError on bad JSON."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("specversion") != SPECVERSION:
        raise ValueError("not a CloudEvents 1.0 structured envelope")
    return value


#: JSON Schema of the envelope (the ``data`` schema is per event type; see docs/asyncapi.yaml).
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "seq", "data"],
    "properties": {
        "specversion": {"const": SPECVERSION},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "pattern": "^callbridge/"},
        "type": {"type": "string", "pattern": "^org\\.callbridge\\."},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
        "datacontenttype": {"const": CONTENT_TYPE},
        "callid": {"type": "string"},
        "hotline": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1},
        "data": {"type": "object"},
    },
}
