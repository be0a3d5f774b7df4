"""Messages of the C loop (dict first, header tuple on demand) must be indistinguishable from messages built
from headers, and the framer must read what the line reader reads."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.ami.decode import decode
from callbridge.ami.event_types import DialBegin
from callbridge.ami.framing import AmiFramer, AmiMessage, message_fields, parse_headers
from tests.conftest import traces_dir


def _rebuilt(msg: AmiMessage) -> AmiMessage:
    """The same message built the slow way: from a header tuple."""
    return AmiMessage(tuple((k, v) for k, v in msg.headers))


def _all_trace_messages() -> list[AmiMessage]:
    out: list[AmiMessage] = []
    for path in sorted(traces_dir().glob("*.rx.raw")):
        out += [f for f in AmiFramer().feed(path.read_bytes()) if isinstance(f, AmiMessage)]
    return out


def _lazy(raw: bytes) -> AmiMessage:
    frames = AmiFramer(expect_banner=False).feed(raw)
    assert len(frames) == 1 and type(frames[0]) is AmiMessage
    return frames[0]


def test_a_lazy_message_answers_like_a_built_one() -> None:
    raw = b"Event: VarSet\r\nChannel: PJSIP/a-1\r\nVariable: X\r\nValue: a: b\r\nVariable: Y\r\nValue: \r\n\r\n"
    lazy = _lazy(raw)
    built = AmiMessage((("Event", "VarSet"), ("Channel", "PJSIP/a-1"), ("Variable", "X"), ("Value", "a: b"),
                        ("Variable", "Y"), ("Value", "")))  # fmt: skip
    # Ask the cheap questions before the header tuple exists, then compare everything.
    assert (lazy.kind, lazy.name, lazy.get("Value"), lazy.get("ActionID", "-")) == ("event", "VarSet", "a: b", "-")
    assert lazy.as_dict() == built.as_dict() == {"Event": "VarSet", "Channel": "PJSIP/a-1", "Variable": "Y",
                                                   "Value": ""}  # fmt: skip
    assert lazy.get_all("Variable") == ["X", "Y"]
    assert lazy.headers == built.headers and lazy == built and hash(lazy) == hash(built)
    assert repr(lazy) == repr(built)
    assert pickle.loads(pickle.dumps(lazy)) == built
    assert lazy != ("not", "a message")


def test_a_message_stays_immutable() -> None:
    lazy = _lazy(b"Event: Newstate\r\nChannel: x\r\n\r\n")
    for msg in (lazy, AmiMessage((("Event", "Newstate"),))):
        with pytest.raises(dataclasses.FrozenInstanceError):
            msg.headers = ()  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del msg.headers


def test_kind_and_name_of_other_first_headers() -> None:
    resp = _lazy(b"Response: Success\r\nActionID: 7\r\nMessage: ok\r\n\r\n")
    assert (resp.kind, resp.name, resp.get("ActionID")) == ("response", "Success", "7")
    assert _lazy(b"Action: Ping\r\n\r\n").kind == "action"
    assert _lazy(b"Foo: Bar\r\n\r\n").kind == "other"
    assert (AmiMessage(()).kind, AmiMessage(()).name) == ("other", "")


def test_every_recorded_message_decodes_the_same_both_ways() -> None:
    messages = _all_trace_messages()
    assert len(messages) > 500
    for msg in messages:
        again = _rebuilt(msg)
        assert message_fields(msg) == dict(again.headers)
        assert (msg.kind, msg.name) == (again.kind, again.name)
        assert decode(msg) == decode(again), msg.name


def test_missing_snapshot_headers_fall_back_to_empty_strings() -> None:
    # No Channel and no Uniqueid: the slow path still fills what is there.
    ev = decode(AmiMessage((("Event", "Newstate"), ("ChannelStateDesc", "Up"), ("Context", "cb-inbound"))))
    assert ev.snap.state_desc == "Up" and ev.snap.context == "cb-inbound" and ev.snap.uniqueid == ""  # type: ignore[attr-defined]
    dial = decode(AmiMessage((("Event", "DialBegin"), ("DestChannel", "PJSIP/b-2"), ("DestCallerIDNum", "<unknown>"))))
    assert isinstance(dial, DialBegin)
    assert dial.dest.channel == "PJSIP/b-2" and dial.dest.caller_num == "" and dial.snap is None


_NAMES = st.sampled_from(["Event", "Channel", "Value", "X-Y", "", "A B", " Pad", "Tab\t", "Co:lon", "张"])
_VALUES = st.sampled_from(["", "v", "a: b", "a:b", " lead", "trail\r", "x\ry", "<unknown>", "é"])
_LINES = st.one_of(st.tuples(_NAMES, _VALUES).map(lambda p: f"{p[0]}: {p[1]}"),
                   st.sampled_from(["--END COMMAND--", "NoColon", "Name:NoSpace"]))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_LINES, min_size=1, max_size=6), min_size=1, max_size=5), st.integers(1, 50))
def test_fast_path_equals_line_reader_on_header_like_input(messages: list[list[str]], cut: int) -> None:
    blocks = ["\r\n".join(lines) for lines in messages]
    data = "".join(b + "\r\n\r\n" for b in blocks).encode()
    framer = AmiFramer(expect_banner=False)
    got = framer.feed(data[:cut]) + framer.feed(data[cut:])
    expected = [parse_headers(b.encode()) for b in blocks]
    # Blocks that end in a bare CR are read differently only by the line reader's CR strip: same rule.
    assert got == expected
    for frame in got:
        if isinstance(frame, AmiMessage):
            assert frame.as_dict() == dict(frame.headers)
