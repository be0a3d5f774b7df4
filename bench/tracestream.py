"""An AMI event stream built from the recorded Asterisk 22 traces (``tests/fixtures/asterisk-22``).

The synthetic stream (:mod:`bench.amistream`) has one call shape and only kinds callbridge types. This one
replays the events of the recorded scenarios themselves — originates, queues with priorities, blind and
attended transfers (and their cancels), conferences, DTMF, busy and unanswered targets, failed
originates, abandons — with their real header sets and their real mix, untyped kinds included
(``SuccessfulAuth``, ``DeviceStateChange``, ``RTCPSent``, ``Cdr`` …). Each trace is copied many times with
its identifiers renamed per copy (uniqueids and linkedids, the hex counter of channel names, bridge
ids), and the copies are interleaved across ``concurrency`` simultaneous calls as a busy PBX would.

Left out: action replies and list events (``ActionID``: they answer the trace's own actions), and the
``FullyBooted``/``Shutdown`` events (a copy would look like a PBX restart and clear every call); the
restart trace (20) for the same reason.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from bench.amistream import cached_stream, interleave

TRACES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asterisk-22"
STREAM_VERSION = 2  # bump when the shape changes so cached files are rebuilt
_SKIPPED_TRACES = ("20_asterisk_restart_during_call",)
_SKIPPED_EVENTS = (b"FullyBooted", b"Shutdown")
_ID_FIELD = re.compile(rb"^[A-Za-z]*(?:Uniqueid|Linkedid): ([^\r\n]+)", re.M)
_CHANNEL = re.compile(rb"[A-Za-z]+/[^\r\n ]*?-([0-9a-f]{8})(?:;\d)?")
_BRIDGE = re.compile(rb"\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def trace_events(path: Path) -> list[bytes]:
    """The event blocks of one recorded ``.rx.raw`` trace (each ending with its blank line)."""
    data = path.read_bytes()
    out: list[bytes] = []
    for block in data.split(b"\r\n\r\n"):
        block = block.strip(b"\r\n")
        if not block.startswith(b"Event: ") or b"\r\nActionID: " in block:
            continue
        name = block[7 : block.find(b"\r\n")] if b"\r\n" in block else block[7:]
        if name in _SKIPPED_EVENTS:
            continue
        out.append(block + b"\r\n\r\n")
    return out


@cache
def templates() -> tuple[tuple[bytes, ...], ...]:
    """Every usable trace's events, in file order."""
    found = []
    for path in sorted(TRACES.glob("*.rx.raw")):
        if path.name.removesuffix(".rx.raw") in _SKIPPED_TRACES:
            continue
        events = trace_events(path)
        if events:
            found.append(tuple(events))
    if not found:
        raise FileNotFoundError(f"no recorded traces under {TRACES}")
    return tuple(found)


def _renamer(events: tuple[bytes, ...]) -> Callable[[int], list[bytes]]:
    """A function copy number → the trace's events with that copy's identifiers."""
    text = b"".join(events)
    ids = {m.group(1) for m in _ID_FIELD.finditer(text) if m.group(1).strip()}
    alternatives = b"|".join(re.escape(v) for v in sorted(ids, key=len, reverse=True))
    pattern = re.compile(b"(?:" + alternatives + rb")(?![\w.])") if ids else None

    def copy(k: int) -> list[bytes]:
        tag = f"{k & 0xFFFF:04x}".encode()
        suffix = f".c{k}".encode()
        out = []
        for ev in events:
            if pattern is not None:
                ev = pattern.sub(lambda m: m.group(0) + suffix, ev)
            ev = _CHANNEL.sub(lambda m: m.group(0).replace(m.group(1), tag + m.group(1)[4:], 1), ev)
            ev = _BRIDGE.sub(lambda m: b"%08x" % (k & 0xFFFFFFFF) + m.group(1), ev)
            out.append(ev)
        return out

    return copy


def generate(events: int, *, seed: int = 8, concurrency: int = 100) -> Iterator[bytes]:
    """About ``events`` AMI events: whole trace copies (trace ``k % traces`` for copy ``k``), interleaved."""
    rng = random.Random(seed)
    renamers = [_renamer(t) for t in templates()]
    return interleave(lambda k: iter(renamers[k % len(renamers)](k)), events, rng, concurrency)


def stream_file(events: int, *, seed: int = 8, concurrency: int = 100) -> tuple[Path, int]:
    """The cached trace-built stream (banner, events, the end call, ``BenchEnd``) and its event count."""
    name = f"traces-v{STREAM_VERSION}-{events}-{seed}-{concurrency}"
    return cached_stream(name, lambda: generate(events, seed=seed, concurrency=concurrency))
