"""The C fast path (callbridge/ami/fast/) must give exactly what the Python reference gives.

Every test frames the same bytes twice — with the C loop and with the line reader alone
(``use_c=False``) — and compares frames, header tuples, dicts and typed events (the C loop's against
the Python decoders'). The C loop is built by ``pip install -e .`` (setup.py); a machine
without a C compiler runs the pure-Python path only, and must say so by setting CALLBRIDGE_NO_C_EXT=1.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.amistream import generate
from callbridge.ami import fast
from callbridge.ami.decode import DECODERS, decode
from callbridge.ami.event_types import VarSet
from callbridge.ami.fast import C_EVENTS, c_event_fields, run_parser
from callbridge.ami.framing import AmiFramer, AmiMessage, Frame, message_fields
from tests.conftest import traces_dir

C_LOOP = run_parser(AmiMessage)


def test_the_c_loop_is_built() -> None:
    if os.environ.get("CALLBRIDGE_NO_C_EXT") == "1":
        pytest.skip("CALLBRIDGE_NO_C_EXT=1: this machine runs the pure-Python framing only")
    assert C_LOOP is not None, "callbridge.ami.fast._fastframe is not built: run `pip install -e .` with a C compiler"


def _frames(data: bytes, cuts: list[int], use_c: bool) -> list[Frame]:
    framer = AmiFramer(expect_banner=data.startswith(b"Asterisk"), use_c=use_c)
    out: list[Frame] = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        out += framer.feed(data[last:cut])
        last = cut
    return out


def _same(data: bytes, cuts: list[int]) -> list[Frame]:
    with_c = _frames(data, cuts, True)
    without = _frames(data, cuts, False)
    assert with_c == without  # AmiMessage equality is by header tuple; Banner/MalformedFrame by value
    for a, b in zip(with_c, without, strict=True):
        assert type(a) is type(b)
        if isinstance(a, AmiMessage) and isinstance(b, AmiMessage):
            assert message_fields(a) == message_fields(b)
            assert (a.kind, a.name, a.get("ActionID"), a.get("Uniqueid")) == (b.kind, b.name, b.get("ActionID"),
                                                                                b.get("Uniqueid"))  # fmt: skip
            if a.kind == "event":
                assert decode(a) == decode(b), a.name
                assert b.typed_event is None  # the reference: decoded by the Python decoders
    return with_c


needs_c = pytest.mark.skipif(C_LOOP is None, reason="the C loop is not built (see test_the_c_loop_is_built)")


def _trace_files() -> Iterator[bytes]:
    for path in sorted(traces_dir().glob("*.rx.raw")):
        yield path.read_bytes()


@needs_c
def test_every_recorded_trace_frames_the_same() -> None:
    rng = random.Random(7)
    messages = 0
    for data in _trace_files():
        cuts = [rng.randrange(len(data)) for _ in range(20)]
        messages += len(_same(data, cuts))
        messages += len(_same(data, []))
    assert messages > 1000


@needs_c
def test_the_benchmark_stream_frames_the_same() -> None:
    data = b"".join(generate(300))
    frames = _same(data, list(range(0, len(data), 65536)))
    assert sum(1 for f in frames if isinstance(f, AmiMessage) and f.kind == "event") > 5000


@needs_c
def test_values_of_every_width_and_many_distinct_names() -> None:
    # ASCII, Latin-1, CJK (2 bytes per character in CPython) and an emoji (4) in one run, and more
    # distinct header names than the C name cache holds (it must stop caching, not fail).
    names = [f"X-Header-{i}" for i in range(600)] + ["N" * 60]
    blocks = ["Event: UserEvent\r\nUserEvent: wide\r\nName: café 张伟 🚑\r\nEmpty: \r\nColon: a: b:c"]
    blocks += ["Event: UserEvent\r\n" + "\r\n".join(f"{n}: v{i}" for i, n in enumerate(names[j : j + 50]))
               for j in range(0, len(names), 50)]  # fmt: skip
    data = ("\r\n\r\n".join(blocks) + "\r\n\r\n").encode()
    frames = _same(data, [])
    first = frames[0]
    assert isinstance(first, AmiMessage)
    assert message_fields(first)["Name"] == "café 张伟 🚑" and message_fields(first)["Colon"] == "a: b:c"
    # 5 headers in the first block, then every name once plus an Event line in each of the 13 blocks
    assert sum(len(message_fields(f)) for f in frames if isinstance(f, AmiMessage)) == 5 + len(names) + 13


_NAMES = st.sampled_from(["Event", "Channel", "Value", "X-Y", "", "A B", " Pad", "Tab\t", "Co:lon", "张", "Response"])
_VALUES = st.sampled_from(["", "v", "a: b", "a:b", " lead", "trail\r", "x\ry", "<unknown>", "é", "张伟", "🚑", "\n"])
_LINES = st.one_of(st.tuples(_NAMES, _VALUES).map(lambda p: f"{p[0]}: {p[1]}"),
                   st.sampled_from(["--END COMMAND--", "NoColon", "Name:NoSpace", "", "\r"]))  # fmt: skip
_ENDS = st.sampled_from(["\r\n\r\n", "\r\n\r\n", "\r\n\r\n", "\n\n", "\r\n\r\n\r\n", "\r\n\n"])


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.lists(_LINES, min_size=1, max_size=6), _ENDS), min_size=1, max_size=6),
       st.lists(st.integers(0, 400), max_size=4))  # fmt: skip
def test_any_header_like_input_frames_the_same(messages: list[tuple[list[str], str]], cuts: list[int]) -> None:
    data = "".join("\r\n".join(lines) + end for lines, end in messages).encode()
    _same(data, [c for c in cuts if c <= len(data)])


# --- what the C loop builds besides the dict: snapshots, shared values, texts; and invalid UTF-8 -----------

_SNAP_FIELDS = ["Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
                "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid",
                "Linkedid"]  # fmt: skip
_SNAP_VALUES = st.sampled_from(
    ["", "<unknown>", "PJSIP/1001-00000001", "1795917000.1", "Up", "6", "张伟", "cb-inbound"]
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Newchannel", "VarSet", "DialBegin", "DialEnd", "AgentCalled", "Hangup", "BridgeEnter"]),
    st.lists(st.tuples(st.sampled_from(["", "Dest"]), st.sampled_from(_SNAP_FIELDS), _SNAP_VALUES), max_size=40),
    st.booleans(),
)
def test_snapshots_built_in_c_decode_as_the_python_readers_do(
    event: str, lines: list[tuple[str, str, str]], complete: bool
) -> None:
    # Any subset of the snapshot fields of both prefixes, repeated or not, in any order, "<unknown>"
    # caller IDs: the typed event must not depend on whether the C loop built the snapshot.
    if complete:
        lines = [(p, f, f"{p}{f}-v") for p in ("", "Dest") for f in _SNAP_FIELDS] + lines
    block = "\r\n".join([f"Event: {event}", *(f"{p}{f}: {v}" for p, f, v in lines)])
    frames = _same((block + "\r\n\r\n").encode(), [])
    assert len(frames) == 1 and isinstance(frames[0], AmiMessage)
    if complete and lines[-1][0] == "":  # the last value of a repeated name wins, as in the dict
        assert message_fields(frames[0])[lines[-1][1]] == lines[-1][2]


def _c_module() -> Any:
    return importlib.import_module("callbridge.ami.fast._fastframe")


@needs_c
def test_the_c_loop_builds_the_bulk_events_and_shares_repeated_values() -> None:
    _c_module().value_cache_clear()  # what earlier tests (10k-call streams) taught it must not decide this
    framer = AmiFramer(expect_banner=False)
    messages = [f for f in framer.feed(b"".join(generate(20))) if isinstance(f, AmiMessage) and f.kind == "event"]
    dials = [m for m in messages if m.name == "DialBegin"]
    assert dials and all(m.typed_event is not None and m.typed_event.dest.channel for m in dials)
    by_uid: dict[str, list[str]] = {}
    for m in messages:
        if "Uniqueid" in message_fields(m):
            by_uid.setdefault(message_fields(m)["Uniqueid"], []).append(message_fields(m)["Uniqueid"])
    repeated = [values for values in by_uid.values() if len(values) > 3]
    assert repeated
    # One str object per value while it keeps coming (its hash computed once for all the tracker's dict
    # look-ups). The cache is bounded, so a value is sometimes evicted between two uses: most, not all.
    shared = sum(v is values[0] for values in repeated for v in values[1:])
    assert shared > 0.8 * sum(len(values) - 1 for values in repeated)


@needs_c
def test_non_ascii_values_are_shared_too() -> None:
    """Callers' names (张伟, José Müller) go through the value cache like ASCII values (issue 19.5: each
    decoded anew was one copy per snapshot the tracker kept); equal bytes in different scripts stay apart."""
    _c_module().value_cache_clear()
    names = ["张伟", "José Müller", "杨帆 (12345)", "Jos\u00e9 M\u00fcller", "Ω", "O"]
    frames = [f"Event: UserEvent\r\nCallerIDName: {n}\r\nN: {i}\r\n\r\n" for i, n in enumerate(names * 3)]
    data = "".join(frames).encode()
    values = [message_fields(f)["CallerIDName"] for f in AmiFramer(expect_banner=False).feed(data)
              if isinstance(f, AmiMessage)]  # fmt: skip
    assert values == names * 3
    first = {v: v for v in values[: len(names)]}
    assert all(v is first[v] for v in values[len(names) :])
    assert values[0] is not values[1] and values[4] != values[5]


def _values_of(framer: AmiFramer, lines: list[str], header: str) -> list[str]:
    data = "".join(f"Event: UserEvent\r\n{line}\r\n\r\n" for line in lines).encode()
    return [message_fields(f)[header] for f in framer.feed(data) if isinstance(f, AmiMessage)]


@needs_c
def test_a_header_whose_values_never_come_again_is_taken_off_the_value_cache_for_a_while() -> None:
    """A Timestamp never repeats, nor at 100k calls do uniqueids (the cache holds 8192): their puts only
    pushed out values that would have come again (issue 19.3). After 1,024 look-ups with fewer than one in
    eight found, a header's next 65,536 values skip the cache; then it is watched again. A header whose
    values repeat keeps its shared str objects throughout; equal values stay equal either way."""
    c = _c_module()
    c.value_cache_clear()
    framer = AmiFramer(expect_banner=False)
    lines = [f"XOnce: {n}.{n * 7}\r\nXSame: same-{n % 4}" for n in range(1024)]
    assert _values_of(framer, lines, "XOnce") == [f"{n}.{n * 7}" for n in range(1024)]
    assert c.value_cache_watch("XOnce") == (0, 0, 65536)  # 1,024 looked up, none found: off the cache
    assert c.value_cache_watch("XSame") == (0, 0, 0)  # its 1,024 found but the first 4: watched anew
    twice = _values_of(framer, ["XOnce: again\r\nXSame: same-1"] * 2, "XOnce")
    assert twice == ["again", "again"] and twice[0] is not twice[1]  # straight to new strs
    same = _values_of(framer, ["XSame: same-1"] * 2, "XSame")
    assert same[0] is same[1]
    assert c.value_cache_watch("XOnce") == (0, 0, 65534)
    _values_of(framer, [f"XOnce: {n}" for n in range(65534)], "XOnce")
    assert c.value_cache_watch("XOnce") == (0, 0, 0)  # watched again: the calls up may have changed
    again = _values_of(framer, ["XOnce: again"] * 2, "XOnce")
    assert again[0] is again[1] and c.value_cache_watch("XOnce") == (2, 1, 0)


@needs_c
def test_repeated_names_keep_the_wire_order() -> None:
    data = b"Event: UserEvent\r\nVariable: a=1\r\nUserEvent: x\r\nVariable: b=2\r\n\r\n"
    (msg,) = _same(data, [])
    assert isinstance(msg, AmiMessage)
    assert msg.headers == (("Event", "UserEvent"), ("Variable", "a=1"), ("UserEvent", "x"), ("Variable", "b=2"))
    assert msg.get_all("Variable") == ["a=1", "b=2"] and message_fields(msg)["Variable"] == "b=2"


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Event: Newstate", "Channel: x", "CallerIDName: 张伟", "Uniqueid: 1"]),
                          st.sampled_from([b"", b"\xff", b"\xe5\xbc", b"\xc3\xa9", b"\xed\xa0\x80"])),
                min_size=1, max_size=8),
       st.sampled_from([b"Event: A\r\n", b"\xe5\xbc\xa0: name\r\n", b"Bad\xff: x\r\n"]),
       st.lists(st.integers(0, 200), max_size=3))  # fmt: skip
def test_invalid_utf8_and_non_ascii_names_frame_the_same(
    lines: list[tuple[str, bytes]], head: bytes, cuts: list[int]
) -> None:
    # Bytes that are not UTF-8 (or a name that is not ASCII) anywhere in a run: the C loop gives the run
    # back (or that message's text) and the Python readers decide, exactly as without the C loop.
    body = b"\r\n".join(text.encode() + junk for text, junk in lines)
    data = head + body + b"\r\n\r\n" + b"Event: After\r\nUniqueid: 2\r\n\r\n"
    frames = _same(data, [c for c in cuts if c <= len(data)])
    assert frames and isinstance(frames[-1], AmiMessage) and frames[-1].name == "After"


_NUMBERS = st.sampled_from(
    ["", "0", "12", " 12", "+3", "-1", "1_000", "x", "1.5", "٣", "inf", "1e3", "99999999999999999999"]
)
_KINDS = ["Hangup", "HangupRequest", "DTMFEnd", "QueueCallerJoin", "AgentConnect", "AgentComplete", "BridgeEnter",
          "BridgeCreate"]  # fmt: skip
_NUMBER_HEADERS = ["Timestamp", "Cause", "DurationMs", "Position", "Count", "HoldTime", "RingTime", "TalkTime",
                   "BridgeNumChannels"]  # fmt: skip


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_KINDS), st.dictionaries(st.sampled_from(_NUMBER_HEADERS), _NUMBERS), st.booleans())
def test_events_built_in_c_read_numbers_as_the_python_decoders_do(
    event: str, numbers: dict[str, str], with_dest: bool
) -> None:
    lines = [f"Event: {event}", *(f"{f}: {f}-v" for f in _SNAP_FIELDS), *(f"{k}: {v}" for k, v in numbers.items())]
    if with_dest:
        lines += [f"Dest{f}: d-{f}" for f in _SNAP_FIELDS]
    lines += ["BridgeUniqueid: b1", "BridgeType: basic", "Queue: q", "Digit: 1", "Direction: Received"]
    (msg,) = _same(("\r\n".join(lines) + "\r\n\r\n").encode(), [])
    assert isinstance(msg, AmiMessage)
    needs_dest = event.startswith("Agent")
    assert (msg.typed_event is not None) == (with_dest or not needs_dest)  # built in C unless a snapshot is missing


@needs_c
def test_the_hot_kinds_of_the_benchmark_stream_are_built_in_c() -> None:
    framer = AmiFramer(expect_banner=False)
    events = [f for f in framer.feed(b"".join(generate(20))) if isinstance(f, AmiMessage) and f.kind == "event"]
    hot = [m for m in events if m.name in C_EVENTS]
    assert len(hot) > 0.9 * len(events)
    assert all(type(m.typed_event) is C_EVENTS[m.name][0] and decode(m) is m.typed_event for m in hot)


@needs_c
def test_the_hold_kinds_of_the_traces_are_built_in_c_as_the_decoders_build_them() -> None:
    held = [m for data in _trace_files() for m in AmiFramer().feed(data)
            if isinstance(m, AmiMessage) and m.name in ("Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop")]
    assert {m.name for m in held} == {"Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop"}
    for m in held:
        assert m.typed_event is not None, m.name
        assert m.typed_event == DECODERS[m.name](message_fields(m))


def test_a_c_event_table_that_misses_a_field_is_refused() -> None:
    with pytest.raises(TypeError, match="VarSet"):
        c_event_fields(VarSet, (("ts", None), ("snap", None), ("str", "Variable")))
    assert [slot for slot, _, _ in c_event_fields(VarSet, (("ts", None), ("snap", None), ("str", "Variable"),
                                                            ("str", "Value")))] == ["timestamp", "snap", "variable",
                                                                                    "value"]  # fmt: skip


@needs_c
def test_configuring_the_c_loop_again_replaces_its_tables() -> None:
    for _ in range(5):  # more than the C table's room if each configuration added its 22 kinds again
        fast.run_parser.cache_clear()
        assert run_parser(AmiMessage) is not None
    snapshot = b"".join(f"{f}: v\r\n".encode() for f in _SNAP_FIELDS)
    (msg,) = AmiFramer(expect_banner=False).feed(b"Event: VarSet\r\n" + snapshot + b"Variable: A\r\nValue: 1\r\n\r\n")
    assert isinstance(msg, AmiMessage) and isinstance(msg.typed_event, VarSet) and msg.typed_event.variable == "A"
