"""AMI framing: bytes are split on the blank line before decoding; the writer refuses injection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.ami.framing import AmiFramer, AmiMessage, Banner, MalformedFrame, encode_message
from callbridge.errors import UnsafeValueError

EVENT = "Event: Newchannel\r\nChannel: PJSIP/agent1001-00000001\r\nCallerIDName: 张三 José\r\n\r\n".encode()


def test_banner_then_event() -> None:
    frames = AmiFramer().feed(b"Asterisk Call Manager/11.0.0\r\n" + EVENT)
    assert isinstance(frames[0], Banner) and frames[0].text == "Asterisk Call Manager/11.0.0"
    msg = frames[1]
    assert isinstance(msg, AmiMessage)
    assert msg.kind == "event" and msg.name == "Newchannel"
    assert msg.get("CallerIDName") == "张三 José"


@given(st.lists(st.integers(min_value=1, max_value=len(EVENT) * 3 - 1), max_size=12))
def test_split_anywhere_keeps_utf8_intact(cuts: list[int]) -> None:
    data = EVENT * 3
    framer = AmiFramer(expect_banner=False)
    out: list[object] = []
    last = 0
    for cut in sorted(set(cuts)):
        out += framer.feed(data[last:cut])
        last = cut
    out += framer.feed(data[last:])
    assert [m.get("CallerIDName") for m in out if isinstance(m, AmiMessage)] == ["张三 José"] * 3
    assert framer.buffered == 0


def test_bare_lf_endings_and_repeated_headers() -> None:
    frames = AmiFramer(expect_banner=False).feed(
        b"Response: Success\nActionID: 1\nVariable: a=1\nVariable: b=2\n\nEvent: Ping\r\n\r\n"
    )
    first = frames[0]
    assert isinstance(first, AmiMessage)
    assert first.kind == "response" and first.get_all("Variable") == ["a=1", "b=2"]
    assert isinstance(frames[1], AmiMessage) and frames[1].name == "Ping"


def test_malformed_frame_is_reported_not_raised() -> None:
    frames = AmiFramer(expect_banner=False).feed(b"garbage without colon\r\n\r\nEvent: Ok\r\n\r\n")
    assert isinstance(frames[0], MalformedFrame)
    assert isinstance(frames[1], AmiMessage) and frames[1].name == "Ok"


@pytest.mark.parametrize("value", ["x\r\nAction: Hangup", "x\nChannel: /.*/", "a\rb", "nul\x00"])
def test_encode_refuses_control_characters(value: str) -> None:
    with pytest.raises(UnsafeValueError) as info:
        encode_message([("Action", "Setvar"), ("Value", value)])
    assert info.value.header == "Value"


def test_encode_refuses_bad_header_names() -> None:
    with pytest.raises(UnsafeValueError):
        encode_message([("Bad Name", "x")])


def test_encode_round_trip() -> None:
    raw = encode_message([("Action", "Originate"), ("CallerID", '"张三" <13800138000>')])
    msg = AmiFramer(expect_banner=False).feed(raw)[0]
    assert isinstance(msg, AmiMessage) and msg.get("CallerID") == '"张三" <13800138000>'
