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


#: Random hex digits drawn ahead (one ``os.urandom`` per ~430 ids instead of one system call per
#: event); emptied in a forked child, so parent and child never hand out the same digits.
_RANDOM_POOL_BYTES = 4096
_pool: list[Any] = ["", 0]
os.register_at_fork(after_in_child=lambda: _pool.__setitem__(slice(None), ["", 0]))
#: A random hex digit → the UUID variant digit 0b10xx keeping its two low bits.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
#: (Unix ms, "tttttttt-tttt-7") of the previous id: ids of one millisecond share their head.
_ms_head: list[Any] = [None, ""]


def _random_hex19() -> str:
    digits, pos = _pool
    if pos + 19 > len(digits):
        digits, pos = os.urandom(_RANDOM_POOL_BYTES).hex(), 0
        _pool[0] = digits
    _pool[1] = pos + 19
    return digits[pos : pos + 19]  # type: ignore[no-any-return]


def uuid7(now_ms: int | None = None) -> str:
    """A version-7 UUID (48-bit Unix milliseconds + 74 random bits), as in RFC 9562."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if ms != _ms_head[0]:
        t = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        _ms_head[:] = [ms, f"{t[:8]}-{t[8:]}-7"]
    # version 7 | rand_a: 3 digits (12 bits) | variant 0b10 + 2 bits, then 15 digits (62 bits of rand_b),
    # as text from a pool of random hex digits: no uuid.UUID, no bytes per id (hot path: every event)
    r = _random_hex19()
    return f"{_ms_head[1]}{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"


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


_last_time: list[Any] = [None, b""]  # (ts, its rfc3339 bytes) of the previous envelope


def _time_bytes(ts: float) -> bytes:
    """``rfc3339(ts).encode()``; the events of one AMI event (and of one burst) often share their ts."""
    if ts != _last_time[0]:
        _last_time[:] = [ts, rfc3339(ts).encode()]
    return _last_time[1]  # type: ignore[no-any-return]


_PLAIN = frozenset({str, int, float, bool, type(None)})
#: Per event class: (field names but ``ts``, a getter of their values), or None when the class
#: overrides ``data()``.
_DATA_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], Any]] | None] = {}


def _data_json(event: DomainEvent) -> bytes:
    """``orjson.dumps(event.data())``, mostly without building the dict: orjson serialises a slotted
    dataclass natively (enums as their value, tuples as arrays, nested dataclasses as objects, as
    :func:`callbridge.domain.jsonable` does), and ``ts``, the first field, is cut off. A class that
    overrides ``data()`` or has a value orjson does not take natively (a set, a dict with non-str keys)
    goes the general way; the bytes are the same either way (differential test in tests/bus)."""
    cls = type(event)
    native = _NATIVE.get(cls)
    if native is None:
        native = _NATIVE[cls] = _native_ok(cls)
    if native and type(event.ts) in _NUMBERS:  # a number holds no comma: the cut below is exact
        try:
            raw = orjson.dumps(event)
        except TypeError:  # orjson.JSONEncodeError: a value only jsonable() converts
            pass
        else:
            return b"{" + raw[raw.index(b",", 6) + 1 :]  # b'{"ts":<number>,' off: no comma in a number
    return orjson.dumps(_data(event))


#: Per event class: may it be serialised natively (see :func:`_data_json`)?
_NATIVE: dict[type, bool] = {}
_NUMBERS = (float, int)


def _native_ok(cls: type) -> bool:
    names = [f.name for f in dataclasses.fields(cls)]
    plain_data = getattr(cls, "data", None) is DomainEvent.data
    return plain_data and len(names) >= 2 and names[0] == "ts" and hasattr(cls, "__slots__")


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
    eid = event_id or uuid7()
    ce_type, middle = _MIDDLES.get((event.TYPE, site)) or _middle(event.TYPE, site)
    return Envelope(id=eid, seq=seq, type=ce_type, payload=_render(event, middle, seq, eid))


def payload(event: DomainEvent, *, site: str, seq: int) -> bytes:
    """``build(...).payload`` with a fresh id, without the :class:`Envelope` (the publisher's hot path)."""
    middle = (_MIDDLES.get((event.TYPE, site)) or _middle(event.TYPE, site))[1]
    return _render(event, middle, seq, uuid7())


#: (call id, hotline) → the envelope's ``subject``/``callid``/``hotline`` members, encoded: the events
#: of one call repeat them. Bounded: emptied when full.
_CALL_PARTS: dict[tuple[str | None, str | None], bytes] = {}
_CALL_PARTS_MAX = 8192


def _call_part(call_id: str | None, hotline: str | None) -> bytes:
    part = b""
    if call_id:
        quoted = orjson.dumps(call_id)
        part = b',"subject":%s,"callid":%s' % (quoted, quoted)
    if hotline:
        part += b',"hotline":' + orjson.dumps(hotline)
    if len(_CALL_PARTS) >= _CALL_PARTS_MAX:
        _CALL_PARTS.clear()
    _CALL_PARTS[(call_id, hotline)] = part
    return part


def _render(event: DomainEvent, middle: bytes, seq: int, eid: str) -> bytes:
    key = (event.call_id, event.hotline)
    call = _CALL_PARTS.get(key)
    if call is None:
        call = _call_part(*key)
    return b"%s%s%s%s%s%d%s,\"data\":%s}" % (_HEAD, eid.encode(), middle, _time_bytes(event.ts), _AFTER_TIME, seq,
                                           call, _data_json(event))


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
