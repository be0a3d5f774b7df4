"""Byte-level chunking of the raw streams never changes what the tracker derives.

Caller names get multibyte UTF-8 (张三, é, an emoji) so that cuts land inside characters too.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.calls import events as ce
from callbridge.testing.replay import event_record, replay_bytes
from tests.calls.traces import trace_bytes, trace_names

NAME_PREFIX = "张三·José😀 "


@cache
def with_utf8_names(name: str) -> bytes:
    # Every CallerIDName / DestCallerIDName / TransfereeCallerIDName … header gains a multibyte prefix.
    return trace_bytes(name).replace(b"CallerIDName: ", b"CallerIDName: " + NAME_PREFIX.encode())


@cache
def unsplit(name: str) -> tuple[dict[str, object], ...]:
    return tuple(event_record(e) for e in replay_bytes(with_utf8_names(name))[0])


def test_the_utf8_names_reach_the_derived_events() -> None:
    derived, _ = replay_bytes(with_utf8_names("04_blind_transfer_sip_agent_to_hotline"))
    offered = next(e for e in derived if isinstance(e, ce.CallOffered))
    assert offered.caller_name == NAME_PREFIX + "13800138000"


@pytest.mark.parametrize("name", [n for n in trace_names() if b"CallerIDName: " in trace_bytes(n)])
def test_cut_at_every_byte_of_the_first_multibyte_name(name: str) -> None:
    data = with_utf8_names(name)
    start = data.find(NAME_PREFIX.encode())
    for cut in range(start, start + len("张三·".encode()) + 1):  # inside 3-, 3- and 2-byte characters
        assert tuple(event_record(e) for e in replay_bytes(data, chunks=[cut])[0]) == unsplit(name)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(trace_names()), data=st.data())
def test_arbitrary_chunking_gives_identical_events(name: str, data: st.DataObject) -> None:
    raw = with_utf8_names(name)
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(raw) - 1)), max_size=60))
    derived, tracker = replay_bytes(raw, chunks=cuts)
    assert tuple(event_record(e) for e in derived) == unsplit(name)
    assert not tracker.calls


@settings(max_examples=5, deadline=None)
@given(name=st.sampled_from(trace_names()), size=st.integers(min_value=3, max_value=9))
def test_tiny_reads_give_identical_events(name: str, size: int) -> None:
    raw = with_utf8_names(name)
    derived, _ = replay_bytes(raw, chunks=list(range(size, len(raw), size)))
    assert tuple(event_record(e) for e in derived) == unsplit(name)
