"""The publisher's fast paths against their reference paths: same envelope bytes, same outbox rows, same
PUBLISH bytes in the same order, same PUBACKs taken. No timing (bench/ measures).

* envelopes: :func:`~callbridge.bus.envelope.payload` (orjson's native dataclass serialisation for
  ``data``, encoded call parts and times reused) against :func:`build` and against ``orjson.dumps`` of
  the whole attribute dict, for every registered event type (hypothesis builds them from their fields);
* the outbox: :meth:`Outbox.append_events` (multi-row INSERTs, no savepoint for a transaction's first
  batch) against :meth:`Outbox.append` of :class:`OutgoingMessage` (``executemany``), with acknowledged
  rows riding along, on the domain events the recorded Asterisk traces give the tracker;
* the wire: :meth:`PahoPipeline.send` (cached fixed headers) against :func:`encode_publish`, and
  :meth:`PahoPipeline.take_acks` (one-byte remaining lengths read inline) against a plain parser.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sqlite3
import struct
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bus_envelope_bytes import reference
from test_bus_fastpath_acks import pipeline

from callbridge.ami.decode import decode
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.bus import envelope
from callbridge.bus.asyncapi import EVENT_MODULES
from callbridge.bus.config import BusSettings
from callbridge.bus.envelope import _data_json, build, payload, uuid7
from callbridge.bus.fastpath import encode_publish, packet_end
from callbridge.bus.outbox import Outbox, OutgoingMessage
from callbridge.bus.publisher import Publisher
from callbridge.bus.topics import Topics
from callbridge.calls.tracker import CallTracker
from callbridge.domain import EVENT_TYPES, DomainEvent

TRACES = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk-22"
ROWS = "SELECT seq, topic, payload, retain, kind, coalesce_key FROM outbox ORDER BY seq"

for _module in EVENT_MODULES:
    importlib.import_module(_module)
ALL_TYPES = sorted(EVENT_TYPES.values(), key=lambda c: c.TYPE)
any_event = st.sampled_from(ALL_TYPES).flatmap(st.from_type)


def trace_batches() -> list[list[DomainEvent]]:
    """The domain events of every recorded trace, one batch per AMI event that gave any."""
    batches: list[list[DomainEvent]] = []
    for path in sorted(TRACES.glob("*.rx.raw")):
        framer, tracker = AmiFramer(), CallTracker()
        for frame in framer.feed(path.read_bytes()):
            if type(frame) is AmiMessage and frame.kind == "event":
                out = tracker.feed(decode(frame))
                if out:
                    batches.append(out)
    return batches


class FixedIds:
    """uuid7 replaced by a counter, so that two paths give the same ids."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, now_ms: int | None = None) -> str:
        self.n += 1
        return f"00000000-0000-7000-8000-{self.n:012d}"


# --- envelopes ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=any_event)
def test_data_is_serialised_natively_as_the_general_conversion_would(event: DomainEvent) -> None:
    try:
        expected = orjson.dumps(event.data())
    except TypeError:  # a value orjson cannot take at all: the fast path must fail the same way
        with pytest.raises(TypeError):
            _data_json(event)
        return
    assert _data_json(event) == expected


def test_values_orjson_does_not_take_natively_go_the_general_way() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Tagged(DomainEvent):  # no TYPE: not registered
        tags: frozenset[str]
        counts: dict[int, int]

    event = Tagged(ts=1.0, call_id="1.2", tags=frozenset({"b"}), counts={3: 4})
    expected = b'{"call_id":"1.2","hotline":null,"tags":["b"],"counts":{"3":4}}'
    assert _data_json(event) == orjson.dumps(event.data()) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=any_event, site=st.sampled_from(["lab", "bench", "城市"]), seq=st.integers(1, 2**40),
       ts=st.floats(0, 4e9))  # fmt: skip
def test_payload_is_the_envelope_of_build_and_of_the_whole_dict(event: DomainEvent, site: str, seq: int,
                                                                 ts: float) -> None:  # fmt: skip
    event = dataclasses.replace(event, ts=ts)  # rfc3339 takes years 1970-9999 (as before)
    try:
        expected = reference(event, site, seq, "fixed-id")
    except TypeError:
        return  # not serialisable at all (see above)
    original = envelope.uuid7
    envelope.uuid7 = lambda now_ms=None: "fixed-id"
    try:
        assert payload(event, site=site, seq=seq) == expected
    finally:
        envelope.uuid7 = original
    assert build(event, site=site, seq=seq, event_id="fixed-id").payload == expected


def test_uuid7_has_the_layout_time_and_randomness_of_rfc_9562() -> None:
    ids = [uuid7(now_ms=1_796_000_000_123) for _ in range(4000)]
    assert len(set(ids)) == len(ids)
    layout = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(layout.match(i) for i in ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert {u.int >> 80 for u in parsed} == {1_796_000_000_123}  # the 48-bit millisecond prefix
    assert {i[19] for i in ids} == set("89ab")  # the variant digit keeps its two random bits
    assert len({i[15:18] for i in ids}) > 2000  # rand_a varies (4,096 values)
    later = uuid7(now_ms=1_796_000_000_124)
    assert later > max(ids)  # time-ordered across milliseconds


# --- the outbox ---------------------------------------------------------------------------------


def test_event_rows_are_the_rows_of_the_generic_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = trace_batches() * 4  # the traces' 140-odd events, four times over
    assert sum(map(len, batches)) > 500 and len({type(e) for b in batches for e in b}) > 10
    topics = Topics("lab")
    ids = FixedIds()
    monkeypatch.setattr(envelope, "uuid7", FixedIds())  # the fast path's ids: the same sequence
    settings_ = BusSettings(host="127.0.0.1", port=1, site="lab", outbox_path=tmp_path / "fast.db",
                            outbox_max_rows=1_000_000)  # fmt: skip
    fast = Publisher(settings_)  # no event loop: each append commits at once
    with Outbox(tmp_path / "reference.db", max_rows=1_000_000) as ref:
        for i, batch in enumerate(batches):
            messages = []
            for event in batch:
                body = build(event, site="lab", seq=ref.next_event_seq(), event_id=ids()).payload
                messages += [OutgoingMessage(topic, body) for topic in topics.for_event(event)]
            acked = [r.seq for r in ref.pending(limit=3)] if i % 3 == 0 else []
            ref.append(messages, acked=acked)
            fast.outbox.ack(acked)
            fast.publish_events_nowait(batch)
        ref.commit()
        fast.outbox.commit()
        reference_rows = sqlite3.connect(tmp_path / "reference.db").execute(ROWS).fetchall()
        fast_rows = sqlite3.connect(tmp_path / "fast.db").execute(ROWS).fetchall()
        assert len(fast_rows) > 500 and fast_rows == reference_rows
        assert [tuple(r) for r in fast.outbox.pending(limit=10**6)] == [tuple(r) for r in ref.pending(limit=10**6)]
        assert fast.outbox.depth == ref.depth == len(reference_rows)
        meta = "SELECT value FROM meta WHERE key='event_seq'"
        assert sqlite3.connect(tmp_path / "fast.db").execute(meta).fetchone() == (ref.next_event_seq() - 1,)
    fast.outbox.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 150), min_size=1, max_size=6), tail=st.booleans())
def test_multi_row_inserts_of_any_size_keep_order_and_rows(tmp_path: Path, sizes: list[int], tail: bool) -> None:
    for name in ("a.db", "b.db"):
        (tmp_path / name).unlink(missing_ok=True)
    with Outbox(tmp_path / "a.db") as a, Outbox(tmp_path / "b.db") as b:
        for k, size in enumerate(sizes):
            messages = [(f"t/{k}/{i}", b"p%d-%d\xe5" % (k, i)) for i in range(size)]
            a.append_events(messages, commit=not tail)
            b.append([OutgoingMessage(t, p) for t, p in messages], commit=not tail)
        a.commit()
        b.commit()
        assert a.pending(limit=10**4) == b.pending(limit=10**4)
    rows_a = sqlite3.connect(tmp_path / "a.db").execute(ROWS).fetchall()
    assert rows_a == sqlite3.connect(tmp_path / "b.db").execute(ROWS).fetchall()
    assert [r[0] for r in rows_a] == list(range(1, sum(sizes) + 1))


def test_a_failing_first_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.append_events([("t/1", b"one")])
        with pytest.raises(sqlite3.IntegrityError):
            box.append_events([("t/2", b"two"), (None, b"no topic")], commit=False)  # type: ignore[list-item]
        assert not box._db.in_transaction  # noqa: SLF001 - the rollback of the batch's own transaction
        box.append_events([("t/3", b"three")])
        assert [(r.topic, r.payload) for r in box.pending()] == [("t/1", b"one"), ("t/3", b"three")]


# --- the wire -----------------------------------------------------------------------------------


def test_publish_bytes_are_those_of_the_reference_encoder(tmp_path: Path) -> None:
    pipe, paho, _, _ = pipeline()
    sizes = [0, 1, 100, 0x7F - 30, 0x7F - 29, 0x3FFF - 40, 0x3FFF - 30, 0x4000, 70_000]
    with Outbox(tmp_path / "o.db") as box:
        box.append_events([(f"callbridge/lab/calls/{n}", b"x" * n) for n in sizes])
        box.append([OutgoingMessage("callbridge/lab/state/mode", b"r" * n, retain=True, kind="state") for n in sizes])
        rows = box.pending(limit=100)
        for _ in range(2):  # the second round takes every header from the cache
            first = paho.mid + 1
            pipe.send(rows)
            expected = b"".join(encode_publish(r.topic, r.payload, first + i, retain=r.retain, v5=True)
                                for i, r in enumerate(rows))  # fmt: skip
            assert paho.queued.pop() == expected


def plain_take(buf: bytes, ours: dict[int, int]) -> tuple[list[int], list[tuple[int, int]], int, bool]:
    """The reference: every PUBACK parsed through packet_end, as before the inline read."""
    acked, refused, pos = [], [], 0
    while pos < len(buf) and buf[pos] == 0x40:
        end = packet_end(buf, pos)
        if end is None:
            return acked, refused, pos, True
        i = pos + 1
        while buf[i] & 0x80:
            i += 1
        body = i + 1
        seq = ours.pop(buf[body] << 8 | buf[body + 1], None)
        if seq is None:
            break
        code = buf[body + 2] if end - body > 2 else 0
        (acked.append(seq) if code < 0x80 else refused.append((seq, code)))  # type: ignore[func-returns-value]
        pos = end
    return acked, refused, pos, False


puback_form = st.tuples(st.integers(1, 40), st.sampled_from([None, 0, 0x10, 0x87, 0x90]), st.integers(0, 200))


@settings(max_examples=300, deadline=None)
@given(forms=st.lists(puback_form, max_size=30), cut=st.integers(0, 40))
def test_pubacks_are_taken_as_the_plain_parser_takes_them(forms: list[Any], cut: int) -> None:
    pipe, _, acked, refused = pipeline()
    packets = []
    for mid, code, props in forms:
        body = struct.pack("!H", mid)
        if code is not None:
            body += bytes((code,))
            if props:
                reason = b"r" * props
                prop_bytes = b"\x1f" + struct.pack("!H", len(reason)) + reason
                body += bytes((len(prop_bytes),)) + prop_bytes if len(prop_bytes) < 0x80 else b""
        n = len(body)
        packets.append(b"\x40" + (bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))) + body)
    buf = b"".join(packets)
    buf = buf[: max(0, len(buf) - cut)] if cut < 5 else buf
    ours = {mid: 1000 + mid for mid in range(1, 41) if mid % 7}  # mids 7, 14, … are paho's
    pipe._seq_of.update(ours)  # noqa: SLF001 - the packet ids in flight
    want_acked, want_refused, want_pos, want_incomplete = plain_take(buf, dict(ours))
    assert pipe.take_acks(buf, 0) == (want_pos, want_incomplete)
    assert acked == want_acked and refused == want_refused
