"""AmiProtocol's reply correlation on the real Asterisk 22 sessions (the exact bytes received).

For every recorded session the actions the lab sent are registered as pending, the received bytes are
fed in small pieces, and: every action Asterisk answered resolves; list replies end with their
``EventList: Complete`` event and none of their items leak to the live stream; events that carry an
ActionID but follow a non-list reply (``OriginateResponse``) are live events; ``Response: Error``
becomes AmiActionError.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.ami.protocol import AmiProtocol
from callbridge.errors import AmiActionError, AmiOutcomeUnknown
from tests.ami.null_transport import NullTransport
from tests.conftest import traces_dir


def messages(data: bytes, banner: bool) -> list[AmiMessage]:
    return [f for f in AmiFramer(expect_banner=banner).feed(data) if isinstance(f, AmiMessage)]


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".rx.raw") for p in traces_dir().glob("*.rx.raw"))


@pytest.mark.parametrize("scenario", scenarios())
async def test_replies_resolve_and_list_events_stay_with_their_action(traces: Path, scenario: str) -> None:
    sent = messages((traces / f"{scenario}.tx.raw").read_bytes(), banner=False)
    rx = (traces / f"{scenario}.rx.raw").read_bytes()
    # Scenario 20 reconnects after an Asterisk restart: one protocol per TCP session, as in the client.
    for session in [s for s in re.split(rb"(?=Asterisk Call Manager/)", rx) if s]:
        live: list[AmiMessage] = []
        proto = AmiProtocol(live.append)
        proto.connection_made(NullTransport())
        futures = {m.get("ActionID"): proto.pending.add(m.name, m.get("ActionID")) for m in sent}
        for i in range(0, len(session), 7):
            proto.data_received(session[i : i + 7])
        assert proto.banner.done()

        received = messages(session, banner=True)
        answered = {m.get("ActionID") for m in received if m.kind == "response"}
        assert answered, "every recorded session has replies"
        list_ids: set[str] = set()
        for action_id in answered:
            future = futures[action_id]
            assert future.done(), f"{action_id} unresolved"
            error = future.exception()
            if error is not None:
                assert isinstance(error, AmiActionError)
                continue
            reply = future.result()
            assert reply.response.get("ActionID") == action_id
            if reply.response.get("EventList") == "start":
                list_ids.add(action_id)
                assert reply.events[-1].get("EventList") == "Complete"
                assert all(e.get("ActionID") == action_id for e in reply.events)
        assert not [e for e in live if e.get("ActionID") in list_ids]
        assert all(m.kind == "event" for m in live)

        proto.connection_lost(None)
        for action_id, future in futures.items():
            if action_id not in answered:
                assert isinstance(future.exception(), AmiOutcomeUnknown)


async def test_originate_response_is_a_live_event(traces: Path) -> None:
    sent = messages((traces / "02_originate_two_local_and_bridge.tx.raw").read_bytes(), banner=False)
    live: list[AmiMessage] = []
    proto = AmiProtocol(live.append)
    proto.connection_made(NullTransport())
    for m in sent:
        proto.pending.add(m.name, m.get("ActionID"))
    proto.data_received((traces / "02_originate_two_local_and_bridge.rx.raw").read_bytes())
    originated = [e for e in live if e.name == "OriginateResponse"]
    assert [e.get("Uniqueid") for e in originated] == ["lab-alice", "lab-bob"]
