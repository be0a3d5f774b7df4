"""Replay a recorded AMI stream through the production path: framing → decode → tracker.

Input is either raw AMI bytes exactly as Asterisk sent them (``*.rx.raw``: banner, responses, events) or
a JSON array of AMI event objects (header → value). Responses and the banner are skipped; events are
decoded and fed in order. Input that is no such trace is refused with a :class:`TraceError` naming what is
wrong (a truncated last event, a JSON object instead of an array, bytes that are no AMI, names that are not
UTF-8); nothing is replayed from it.

Time, in this order of preference:

1. an event's ``Timestamp`` header (Asterisk ``timestampevents = yes``);
2. the relative time of the event in the recording's ``NAME.log`` (``<<< t=+SECONDS`` before each frame
   received; see ``../shared/traces/README.md``), when the log is given and lists exactly the trace's
   events;
3. a logical clock: 10 ms per event from 0 (:data:`TICK_S`). Replays are deterministic and durations
   comparable between runs, but not true: a 32 s timeout over 100 events shows as 1 s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import orjson

from callbridge.ami.decode import decode, decode_headers
from callbridge.ami.event_types import AmiEvent
from callbridge.ami.framing import BANNER_PREFIX, AmiFramer, AmiMessage
from callbridge.calls.tracker import CallTracker, HotlineOf
from callbridge.domain import DomainEvent
from callbridge.errors import LocalError

TICK_S = 0.01
# Exit codes of ``callbridge replay`` by what is wrong with a trace (2: the file cannot be read).
TRUNCATED, BAD_JSON, NOT_AN_ARRAY, NOT_AMI, NOT_UTF8 = 3, 4, 5, 6, 7
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9_-]*: ")


class TraceError(LocalError):
    """The input is no AMI trace; ``exit_code`` is the CLI's exit code for this kind of problem."""

    code = "bad_trace"

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def check_raw(data: bytes) -> None:
    """Refuse raw input that is not a complete AMI stream of UTF-8 text (see :class:`TraceError`)."""
    first = data.lstrip(b"\r\n").split(b"\n", 1)[0]
    if not (first.startswith(BANNER_PREFIX) or _HEADER_LINE.match(first)):
        raise TraceError(NOT_AMI, "not an AMI stream (neither the Asterisk banner nor a header line at the start)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TraceError(NOT_UTF8, f"bytes that are not UTF-8 at offset {exc.start} (line {line})") from None
    framer = AmiFramer()
    framer.feed(data)
    if framer.buffered and data.rstrip(b"\r\n"):
        raise TraceError(TRUNCATED, f"the last event is truncated ({framer.buffered} bytes without the blank line "
                                    "that ends an AMI message)")  # fmt: skip


def is_json(data: bytes) -> bool:
    return data.lstrip()[:1] == b"["


def events_from_json(data: bytes) -> list[AmiEvent]:
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise TraceError(BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise TraceError(NOT_AN_ARRAY, f"a JSON trace is an array of event objects, not a JSON {type(items).__name__}")
    out: list[AmiEvent] = []
    for item in items:
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


def times_from_log(text: str) -> list[float]:
    """The relative time of every event frame received in a ``NAME.log`` (``<<< t=+SECONDS``), in order."""
    times: list[float] = []
    at: float | None = None
    for line in text.splitlines():
        if line.startswith(("<<<", ">>>", "###")):
            match = re.match(r"<<< t=\+\s*([0-9.]+)", line)
            at = float(match.group(1)) if match else None
        elif at is not None and line.startswith("Event: "):
            times.append(at)
    return times


def replay_events(
    events: Iterable[AmiEvent], tracker: CallTracker | None = None, times: Sequence[float] | None = None
) -> tuple[list[DomainEvent], CallTracker]:
    """Feed ``events``; each at its Timestamp, else at ``times[i]`` (from the log), else the logical clock."""
    tracker = tracker or CallTracker()
    derived: list[DomainEvent] = []
    for i, ev in enumerate(events):
        if ev.timestamp is not None:
            now = ev.timestamp
        else:
            now = times[i] if times is not None and i < len(times) else i * TICK_S
        derived.extend(tracker.feed(ev, now=now))
    return derived, tracker


def replay_bytes(
    data: bytes, chunks: Sequence[int] | None = None, hotline_of: HotlineOf | None = None,
    log: str | None = None,
) -> tuple[list[DomainEvent], CallTracker]:  # fmt: skip
    """Replay raw AMI text or a JSON array of events; ``chunks`` are byte offsets to split the raw stream,
    ``log`` the recording's ``NAME.log`` text (its relative times are used when it matches the events).
    Raises :class:`TraceError` for input that is no trace."""
    tracker = CallTracker(hotline_of=hotline_of)
    if is_json(data) or data.lstrip()[:1] == b"{":
        return replay_events(events_from_json(data), tracker)
    check_raw(data)
    events = list(events_from_raw(data, chunks))
    times = times_from_log(log) if log is not None else None
    if times is not None and len(times) != len(events):
        times = None  # the log is of another session (or edited): the logical clock, not wrong times
    return replay_events(events, tracker, times)


def event_record(ev: DomainEvent) -> dict[str, object]:
    """The stable JSON shape of a derived event: type, ts, call_id, hotline, then the data fields."""
    record: dict[str, object] = {"type": ev.TYPE, "ts": ev.ts, "call_id": ev.call_id, "hotline": ev.hotline}
    record.update((k, v) for k, v in ev.data().items() if k not in record)
    return record
