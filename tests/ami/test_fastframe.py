"""The C inner loop of framing (callbridge/ami/_fastframe.c) must give exactly what the Python readers give.

Every test frames the same bytes twice — with the C loop and with it switched off — and compares frames,
header tuples, dicts and typed events. The C loop is built by ``pip install -e .`` (setup.py); a machine
without a C compiler runs the pure-Python path only, and must say so by setting CALLBRIDGE_NO_C_EXT=1.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.ami import framing
from callbridge.ami.events import decode
from callbridge.ami.framing import AmiFramer, AmiMessage, Frame, message_fields
from tests.conftest import traces_dir

C_LOOP = framing._c_parse_run


def test_the_c_loop_is_built() -> None:
    if os.environ.get("CALLBRIDGE_NO_C_EXT") == "1":
        pytest.skip("CALLBRIDGE_NO_C_EXT=1: this machine runs the pure-Python framing only")
    assert C_LOOP is not None, "callbridge.ami._fastframe is not built: run `pip install -e .` with a C compiler"


def _frames(data: bytes, cuts: list[int], use_c: bool) -> list[Frame]:
    saved = framing._c_parse_run
    framing._c_parse_run = C_LOOP if use_c else None
    try:
        framer = AmiFramer(expect_banner=data.startswith(b"Asterisk"))
        out: list[Frame] = []
        last = 0
        for cut in [*sorted(cuts), len(data)]:
            out += framer.feed(data[last:cut])
            last = cut
        return out
    finally:
        framing._c_parse_run = saved


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
    from bench.amistream import generate

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
