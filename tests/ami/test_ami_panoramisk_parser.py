"""Why callbridge replaces panoramisk's parser: a UTF-8 name split across two TCP reads.

Both protocols get the same two reads, cut inside the first byte sequence of "张". panoramisk's
``AMIProtocol.data_received`` decodes each read on its own with ``errors="ignore"`` and loses the
character; our :class:`AmiProtocol` (a subclass of it with its own ``data_received``) keeps it.
If a panoramisk release fixes this, the first test fails and the note in protocol.py can go.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from callbridge.ami.decode import decode
from callbridge.ami.event_types import Newchannel
from callbridge.ami.framing import AmiMessage
from callbridge.ami.protocol import AmiProtocol
from tests.ami.null_transport import NullTransport

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
FRAME = "Event: Newchannel\r\nChannel: PJSIP/trunk-00000001\r\nCallerIDName: 张三\r\nUniqueid: u1\r\n\r\n".encode()
CUT = FRAME.index("张".encode()) + 1  # inside the 3-byte sequence of 张


def test_panoramisk_parser_loses_a_split_utf8_character() -> None:
    dispatched: list[Any] = []
    proto = AMIProtocol()
    proto.connection_made(NullTransport())
    # What panoramisk.Manager.connection_made sets up before data flows.
    proto.factory = SimpleNamespace(dispatch=dispatched.append, save_stream=None)
    proto.encoding = "utf8"
    proto.data_received(BANNER + FRAME[:CUT])
    proto.data_received(FRAME[CUT:])
    assert len(dispatched) == 1
    assert dispatched[0]["CallerIDName"] != "张三"
    assert dispatched[0]["CallerIDName"] == "三"


async def test_our_protocol_keeps_it() -> None:
    events: list[AmiMessage] = []
    proto = AmiProtocol(events.append)
    proto.connection_made(NullTransport())
    proto.data_received(BANNER + FRAME[:CUT])
    proto.data_received(FRAME[CUT:])
    assert proto.banner.result() == "Asterisk Call Manager/11.0.0"
    assert len(events) == 1 and events[0].get("CallerIDName") == "张三"
    event = decode(events[0])
    assert isinstance(event, Newchannel) and event.snap.caller_name == "张三"
