"""Replay a recorded AMI stream through the production path: framing → decode → tracker.

Input is either raw AMI bytes exactly as Asterisk sent them (``*.rx.raw``: banner, responses, events) or
a JSON array of AMI event objects (header → value). Responses and the banner are skipped; events are
decoded and fed in order.

Time: an event's ``Timestamp`` header (Asterisk ``timestampevents``) when present, otherwise a logical
clock that advances 10 ms per event from 0 — so replays are deterministic (the chunking test relies on
it) and durations are comparable between runs, though not wall-clock true.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import orjson

from callbridge.ami.events import AmiEvent, decode, decode_headers
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls.tracker import CallTracker, HotlineOf
from callbridge.domain import DomainEvent

TICK_S = 0.01


def is_json(data: bytes) -> bool:
    return data.lstrip()[:1] == b"["


def events_from_json(data: bytes) -> list[AmiEvent]:
    items = orjson.loads(data)
    out: list[AmiEvent] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "Event" in item:
            out.append(decode_headers(str(item["Event"]), {str(k): str(v) for k, v in item.items()}))
    return out


def events_from_raw(data: bytes, chunks: Sequence[int] | None = None) -> Iterator[AmiEvent]:
    """Frame and decode raw AMI bytes, fed to the framer split at the given byte offsets."""
    framer = AmiFramer()
    cuts = sorted({c for c in chunks or () if 0 < c < len(data)})
    start = 0
    for end in [*cuts, len(data)]:
        for frame in framer.feed(data[start:end]):
            if isinstance(frame, AmiMessage) and frame.kind == "event":
                yield decode(frame)
        start = end


def replay_events(
    events: Iterable[AmiEvent], tracker: CallTracker | None = None
) -> tuple[list[DomainEvent], CallTracker]:
    tracker = tracker or CallTracker()
    derived: list[DomainEvent] = []
    for i, ev in enumerate(events):
        derived.extend(tracker.feed(ev, now=ev.timestamp if ev.timestamp is not None else i * TICK_S))
    return derived, tracker


def replay_bytes(
    data: bytes, chunks: Sequence[int] | None = None, hotline_of: HotlineOf | None = None
) -> tuple[list[DomainEvent], CallTracker]:
    """Replay raw AMI text or a JSON array of events; ``chunks`` are byte offsets to split the raw stream."""
    tracker = CallTracker(hotline_of=hotline_of)
    if is_json(data):
        return replay_events(events_from_json(data), tracker)
    return replay_events(events_from_raw(data, chunks), tracker)


def event_record(ev: DomainEvent) -> dict[str, object]:
    """The stable JSON shape of a derived event: type, ts, call_id, hotline, then the data fields."""
    record: dict[str, object] = {"type": ev.TYPE, "ts": ev.ts, "call_id": ev.call_id, "hotline": ev.hotline}
    record.update((k, v) for k, v in ev.data().items() if k not in record)
    return record
