"""The framer's bulk fast path must give exactly what the line-by-line reader gives, on any input."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from callbridge.ami.framing import AmiFramer, Frame, parse_headers

_END = re.compile(rb"\r?\n\r?\n")


def reference_frames(data: bytes) -> list[Frame]:
    """The original algorithm (regex split, then one line at a time), kept here as the oracle."""
    out: list[Frame] = []
    pos = 0
    while True:
        while pos < len(data) and data[pos] in (0x0D, 0x0A):
            pos += 1
        match = _END.search(data, pos)
        if match is None:
            return out
        block = data[pos : match.start()]
        out.append(parse_headers(block))
        pos = match.end()


# Mostly well-formed AMI, plus every character the fast path has to notice.
TOKENS = ["Event", "Channel", ": ", ":", " ", "\t", "\xa0", "\u3000", "\r\n", "\r\n\r\n", "\n", "\r", "x", "张", "é"]
messages = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@settings(max_examples=200, deadline=None)
# Cases a split at ": " gets wrong unless it checks first (each once broke a draft of the fast path).
@example(["Event\n", "Event"], [])
@example(["A: b\r", "C: d"], [])
@example(["A: b\r\r\nC: d", "Key : v", "\xa0Key: v", "K:v: w", ": v", "A: x\nB: y"], [7, 30])
@given(st.lists(messages, max_size=6), st.lists(st.integers(min_value=1, max_value=400), max_size=6))
def test_fast_path_matches_line_reader(parts: list[str], cuts: list[int]) -> None:
    data = "".join(p + "\r\n\r\n" for p in parts).encode()
    framer = AmiFramer(expect_banner=False)
    got: list[Frame] = []
    last = 0
    for cut in sorted({c for c in cuts if c < len(data)}):
        got += framer.feed(data[last:cut])
        last = cut
    got += framer.feed(data[last:])
    assert got == reference_frames(data)
