"""Bounded fuzzing of the AMI byte stream: framing (C loop and Python reference) and the tracker behind it.

The input is what a broken or hostile PBX connection can deliver: the recorded Asterisk 22 traces
(tests/fixtures/asterisk-22/*.rx.raw), whole or truncated anywhere, mixed with garbage bytes, invalid
UTF-8, bare line ends, huge headers and runs of blank lines, and fed in random splits. Hypothesis is
derandomised with a bounded number of examples, so CI runs the same inputs every time.

Properties: framing never raises; the C loop and the pure-Python path give the same frames; the
tracker needs no safety net (no error logged) for anything framing yields; and every call all of whose
channels got a Hangup is gone.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from callbridge.ami import event_types as ami
from callbridge.ami.decode import decode
from callbridge.ami.fast import run_parser
from callbridge.ami.framing import AmiFramer, AmiMessage, Banner, Frame, MalformedFrame, message_fields
from callbridge.calls.tracker import CallTracker
from tests.conftest import traces_dir

C_LOOP = run_parser(AmiMessage)
FUZZ = settings(derandomize=True, max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip


@cache
def traces() -> tuple[bytes, ...]:
    found = tuple(p.read_bytes() for p in sorted(traces_dir().glob("*.rx.raw")))
    assert found, "no recorded traces"
    return found


_GARBAGE = st.sampled_from([
    b"\xff", b"\xfe\xfe", b"\xc3", b"\xe5\xbc", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00",
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b"\r\r\n", b":", b": ", b"Event: ", b"Event:Hangup\r\n",
    b"--END COMMAND--\r\n", b"Asterisk Call Manager/11.0.0\r\n", b"Response: Follows\r\n",
    b"Event: Hangup\r\nUniqueid: \xff\r\nLinkedid: \xff\r\n\r\n",
])  # fmt: skip


@st.composite
def _piece(draw: st.DrawFn) -> bytes:
    """One piece of the stream: a trace (whole, a slice, a prefix), garbage, or a huge header."""
    kind = draw(st.integers(0, 5))
    if kind <= 1:
        data = draw(st.sampled_from(traces()))
        if kind == 1:  # a slice: the connection was cut (or joined) anywhere, even inside a character
            start = draw(st.integers(0, len(data)))
            data = data[start : draw(st.integers(start, len(data)))]
        return data
    if kind == 2:
        return draw(_GARBAGE)
    if kind == 3:
        return draw(st.binary(max_size=64))
    if kind == 4:  # a huge header: a name or a value far beyond anything Asterisk sends
        size = draw(st.sampled_from([4096, 65536, 300_000]))
        filler = draw(st.sampled_from([b"a", b"\xe4\xb8\xad", b"\xff", b": ", b"\t"]))
        where = draw(st.booleans())
        line = (b"X-Big: " + filler * (size // len(filler))) if where else (filler * (size // len(filler)) + b": v")
        return b"Event: UserEvent\r\n" + line + b"\r\n\r\n"
    return draw(st.text(max_size=40)).encode("utf-8", errors="surrogatepass")


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    pieces = draw(st.lists(_piece(), min_size=1, max_size=6))
    data = b"".join(pieces)
    cuts = draw(st.lists(st.integers(0, max(len(data), 1)), max_size=12))
    return data, sorted(c for c in cuts if c <= len(data))


def _frames(data: bytes, cuts: list[int], use_c: bool) -> list[Frame]:
    framer = AmiFramer(expect_banner=data.startswith(b"Asterisk"), use_c=use_c)
    out: list[Frame] = []
    last = 0
    for cut in [*cuts, len(data)]:
        out += framer.feed(data[last:cut])
        last = cut
    assert framer.buffered <= len(data)
    return out


def _assert_same(with_c: list[Frame], without: list[Frame]) -> None:
    assert with_c == without
    for a, b in zip(with_c, without, strict=True):
        assert type(a) is type(b)
        if isinstance(a, AmiMessage) and isinstance(b, AmiMessage):
            assert message_fields(a) == message_fields(b)
            assert (a.kind, a.name) == (b.kind, b.name)
            if a.kind == "event":
                assert decode(a) == decode(b), a.name


@FUZZ
@given(streams())
def test_framing_never_raises_and_both_paths_agree(stream: tuple[bytes, list[int]]) -> None:
    data, cuts = stream
    frames = _frames(data, cuts, use_c=False)
    assert all(isinstance(f, AmiMessage | Banner | MalformedFrame) for f in frames)
    if C_LOOP is None:
        pytest.skip("the C loop is not built (tests/ami/test_fastframe.py::test_the_c_loop_is_built says why)")
    _assert_same(_frames(data, cuts, use_c=True), frames)


def _channels_of(events: list[ami.AmiEvent]) -> tuple[dict[str, set[str]], set[str]]:
    """linkedid → uniqueids of the stream's channels, and the uniqueids that got a Hangup."""
    calls: dict[str, set[str]] = {}
    hung: set[str] = set()
    for ev in events:
        for snap in (getattr(ev, "snap", None), getattr(ev, "dest", None)):
            if isinstance(snap, ami.ChannelSnapshot) and snap.uniqueid:
                calls.setdefault(snap.linkedid or snap.uniqueid, set()).add(snap.uniqueid)
        if isinstance(ev, ami.Hangup):
            hung.add(ev.snap.uniqueid)
    return calls, hung


@FUZZ
@given(streams())
def test_the_tracker_takes_whatever_framing_yields(stream: tuple[bytes, list[int]]) -> None:
    data, cuts = stream
    events = [decode(f) for f in _frames(data, cuts, use_c=C_LOOP is not None)
              if isinstance(f, AmiMessage) and f.kind == "event"]  # fmt: skip
    tracker = CallTracker(clock=lambda: 0.0)
    with capture_logs() as logs:
        for i, ev in enumerate(events):
            assert isinstance(tracker.feed(ev, now=float(i)), list)
        tracker.snapshot()
    errors = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert not errors, errors[:3]
    calls, hung = _channels_of(events)
    for call_id, uniqueids in calls.items():
        if uniqueids <= hung:
            assert call_id not in tracker.calls, f"call {call_id}: every channel hung up, the call stays"
