"""The scaling benchmark's steady-state stream: N calls really in progress when the clocks start, and every
client of the comparison counting (and timing) the same events after ``BenchStart``."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import pytest

from bench import amistream
from bench.common import python_subprocess
from bench.ingest import CLIENTS
from callbridge.ami.decode import decode
from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.calls.model import CallState
from callbridge.calls.tracker import CallTracker

CALLS = 300


def _frames(items: list[bytes]) -> list[AmiMessage]:
    framer = AmiFramer(expect_banner=False)
    return [f for f in framer.feed(b"".join(items)) if type(f) is AmiMessage and f.kind == "event"]


def _caller_of(item: bytes) -> str:
    """The call an event of the stream belongs to (its Linkedid; a bridge event's: none)."""
    for line in item.split(b"\r\n"):
        if line.startswith(b"Linkedid: "):
            return line.removeprefix(b"Linkedid: ").decode()
    return ""


def test_at_bench_start_every_call_is_under_way_at_its_own_point() -> None:
    items = list(amistream.generate_steady(2_000, calls=CALLS))
    start = items.index(amistream.START_EVENT)
    tracker = CallTracker()
    for frame in _frames(items[:start]):
        tracker.feed(decode(frame), now=0.0)
    # none ended yet; every call past its first point (all but ~1 in 31, at the point before its first event)
    # is tracked, whatever its state
    progress = collections.Counter(_caller_of(item) for item in items[:start])
    progress.pop("", None)
    assert CALLS * 0.9 < len(progress) <= CALLS and max(progress.values()) < amistream.CALL_EVENTS
    assert len(tracker.calls) == len(progress)
    assert all(call.state is not CallState.ENDED for call in tracker.calls.values())
    # each at a point of its own: how far the calls got is spread over the whole call, not bunched
    reached = sorted(progress.values())
    assert reached[len(reached) // 10] < 8 and reached[-len(reached) // 10] > 20
    states = collections.Counter(call.state for call in tracker.calls.values())
    waiting = states[CallState.QUEUED] + states[CallState.OFFERED]
    assert states[CallState.ANSWERED] > CALLS // 5 and waiting > CALLS // 10
    # and after it, the timed part keeps N calls going: whole calls, new ones as old ones end
    timed = _frames(items[start + 1 :])
    for frame in timed:
        tracker.feed(decode(frame), now=1.0)
    assert abs(len(tracker.calls) - CALLS) <= CALLS // 10
    kinds = collections.Counter(f.name for f in timed)
    assert kinds["Newchannel"] and kinds["Hangup"] and kinds["BridgeEnter"] and len(timed) == 2_000


def test_the_stream_is_the_same_each_time_it_is_built() -> None:
    assert list(amistream.generate_steady(500, calls=50)) == list(amistream.generate_steady(500, calls=50))


@pytest.mark.slow
@pytest.mark.parametrize("client", ["callbridge", "callbridge_core", "bare", "panoramisk"])
def test_every_client_counts_the_events_after_bench_start(client: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    path, expected = amistream.cached_stream("steady-test", lambda: amistream.generate_steady(3_000, calls=200))
    assert expected == 3_000 + 3  # the timed events, the end call's two, BenchEnd
    with python_subprocess("bench.ami_server", str(path)) as (_, port):
        count, seconds, cpu = asyncio.run(CLIENTS[client](int(port)))
    assert count == expected and seconds > 0 and cpu > 0
