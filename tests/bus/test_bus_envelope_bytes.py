"""The envelope built from pre-rendered parts is byte for byte ``orjson.dumps`` of the attribute dict."""

from __future__ import annotations

from typing import Any

import orjson
from bus_helpers import HandOver, Ping
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.bus.envelope import CONTENT_TYPE, SPECVERSION, TYPE_PREFIX, _data, build, decode, rfc3339
from callbridge.domain import DomainEvent


def reference(event: DomainEvent, site: str, seq: int, event_id: str) -> bytes:
    """The envelope as a dict, serialised whole (how it was built before the pre-rendered parts)."""
    body: dict[str, Any] = {"specversion": SPECVERSION, "id": event_id, "source": "callbridge/" + site,
                            "type": TYPE_PREFIX + event.TYPE, "time": rfc3339(event.ts),
                            "datacontenttype": CONTENT_TYPE, "seq": seq}  # fmt: skip
    if event.call_id:
        body["subject"] = body["callid"] = event.call_id
    if event.hotline:
        body["hotline"] = event.hotline
    body["data"] = _data(event)
    return orjson.dumps(body)


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(call_id=text, hotline=text, site=st.sampled_from(["lab", "bench", "城市"]), seq=st.integers(1, 2**40),
       ts=st.floats(0, 4e9), n=st.integers(-(2**40), 2**40), summary=text)  # fmt: skip
def test_same_bytes_as_the_whole_dict(call_id: str, hotline: str, site: str, seq: int, ts: float, n: int,
                                      summary: str) -> None:  # fmt: skip
    for event in (Ping(call_id=call_id, hotline=hotline, ts=ts, n=n),
                  HandOver(call_id=call_id, hotline=hotline, ts=ts, to_hotline="119", caller_num='1"3\\\n',
                           summary=summary)):  # fmt: skip
        envelope = build(event, site=site, seq=seq, event_id="0190-id")
        assert envelope.payload == reference(event, site, seq, "0190-id")
        assert decode(envelope.payload)["seq"] == seq and envelope.type == TYPE_PREFIX + event.TYPE


def test_a_fresh_id_per_envelope_and_the_same_layout() -> None:
    event = Ping(call_id="1.2", hotline="110", ts=1.5, n=1)
    one, two = build(event, site="lab", seq=1), build(event, site="lab", seq=1)
    assert one.id != two.id and decode(one.payload)["id"] == one.id
    assert one.payload.replace(one.id.encode(), b"") == two.payload.replace(two.id.encode(), b"")
