"""Issue 19: the events of a read go to the client in runs, also while actions await their reply; and the
client leaves out the untyped kinds its consumer does not read.

Both are checked against the reference on every recorded trace: the protocol with ``on_event`` alone (every
live event one call at a time) and the client handing over every decoded event.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from callbridge.ami.client import AmiClient, AmiConnected, Resynced, StreamItem
from callbridge.ami.decode import DECODERS, decode
from callbridge.ami.event_types import AmiEvent, FullyBooted, GenericEvent, UserEvent
from callbridge.ami.framing import AmiFramer, AmiMessage, encode_message
from callbridge.ami.protocol import AmiProtocol, RawReply
from callbridge.calls.tracker import UNTYPED_READ
from callbridge.testing.fake_ami import FakeAmi
from tests.ami.null_transport import NullTransport
from tests.conftest import traces_dir


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".rx.raw") for p in traces_dir().glob("*.rx.raw"))


def messages(data: bytes, banner: bool) -> list[AmiMessage]:
    return [f for f in AmiFramer(expect_banner=banner).feed(data) if isinstance(f, AmiMessage)]


def play(sent: list[AmiMessage], session: bytes, step: int, runs: bool) -> tuple[list[AmiMessage], int, list[str]]:
    """The live events a protocol hands over (in order), how many came in runs, and how each action ended."""
    live: list[AmiMessage] = []
    in_runs = [0]

    def on_events(events: list[AmiMessage]) -> None:
        assert events, "no empty run"
        live.extend(events)
        in_runs[0] += len(events)

    proto = AmiProtocol(live.append, on_events=on_events if runs else None)
    proto.connection_made(NullTransport())
    futures = [proto.pending.add(m.name, m.get("ActionID")) for m in sent]
    for i in range(0, len(session), step):
        proto.data_received(session[i : i + step])
    proto.connection_lost(None)
    ends = []
    for future in futures:
        reply = None if future.exception() else future.result()
        ends.append(repr(future.exception()) if reply is None else _reply(reply))
    return live, in_runs[0], ends


def _reply(reply: RawReply) -> str:
    return repr((reply.response.headers, [e.headers for e in reply.events]))


@pytest.mark.parametrize("scenario", scenarios())
@pytest.mark.parametrize("step", [7, 1 << 20])
async def test_runs_while_actions_wait_hand_over_what_one_at_a_time_does(traces: Path, scenario: str,
                                                                       step: int) -> None:
    sent = messages((traces / f"{scenario}.tx.raw").read_bytes(), banner=False)
    rx = (traces / f"{scenario}.rx.raw").read_bytes()
    for session in [s for s in re.split(rb"(?=Asterisk Call Manager/)", rx) if s]:
        reference, _, reference_ends = play(sent, session, step, runs=False)
        live, in_runs, ends = play(sent, session, step, runs=True)
        assert [m.headers for m in live] == [m.headers for m in reference]
        assert ends == reference_ends  # the same replies and list events for every action
        if step > len(session) and len(reference) > 3:
            # every action of the trace stays pending (its list events included): the events still came in runs
            assert in_runs >= len(reference) // 2, (in_runs, len(reference))


async def test_a_list_item_ends_the_run_and_stays_with_its_action() -> None:
    live: list[object] = []
    proto = AmiProtocol(lambda m: live.append(("one", m.name)), on_events=lambda ms: live.append([m.name for m in ms]))
    proto.connection_made(NullTransport())
    listing = proto.pending.add("CoreShowChannels", "a1")
    proto.pending.add("Ping", "a2")  # stays pending: every event below comes while actions wait
    frames = [
        [("Event", "Newexten"), ("Uniqueid", "u1")],
        [("Response", "Success"), ("ActionID", "a1"), ("EventList", "start")],
        [("Event", "VarSet"), ("Uniqueid", "u1")],
        [("Event", "CoreShowChannel"), ("ActionID", "a1"), ("Uniqueid", "u1")],
        [("Event", "OriginateResponse"), ("ActionID", "zz"), ("Uniqueid", "u2")],  # nobody's list: a live event
        [("Event", "Hangup"), ("Uniqueid", "u1")],
        [("Event", "CoreShowChannelsComplete"), ("ActionID", "a1"), ("EventList", "Complete")],
        [("Event", "Newstate"), ("Uniqueid", "u3")],
    ]
    proto.data_received(b"Asterisk Call Manager/11.0.0\r\n" + b"".join(encode_message(f) for f in frames))
    assert live == [["Newexten"], ["VarSet"], ("one", "OriginateResponse"), ["Hangup"], ["Newstate"]]
    reply = listing.result()
    assert [e.name for e in reply.events] == ["CoreShowChannel", "CoreShowChannelsComplete"]


# --- the client: untyped kinds nobody reads are left out --------------------------------------------------------

END = [("Event", "UserEvent"), ("UserEvent", "TraceEnd")]


def trace_events(name: str) -> list[AmiMessage]:
    return [m for m in messages((traces_dir() / f"{name}.rx.raw").read_bytes(), banner=True) if m.kind == "event"]


def reference(events: list[AmiMessage]) -> list[AmiEvent]:
    """Every event decoded, then the untyped kinds the tracker does not read left out (what ``untyped`` means)."""
    decoded = [decode(m) for m in events]
    unread = {e.name for e in decoded if type(e) is GenericEvent} - set(DECODERS) - UNTYPED_READ
    return [e for e in decoded if not (type(e) is GenericEvent and e.name in unread)]


async def _live(client: AmiClient) -> list[StreamItem]:
    got: list[StreamItem] = []
    async with asyncio.timeout(20):
        async for item in client.stream():
            if isinstance(item, UserEvent) and item.user_event == "TraceEnd":
                return got
            got.append(item)
    raise AssertionError("stream ended")


async def test_the_client_leaves_out_only_untyped_kinds_nobody_reads() -> None:
    skipped = 0
    async with FakeAmi(secret="s") as ami:
        for name in scenarios():
            events = trace_events(name)
            client = AmiClient(ami.host, ami.port, "callbridge", "s", ping_interval=30.0, untyped=UNTYPED_READ)
            async with client:
                await client.wait_connected(5)
                data = b"".join(encode_message(m.headers) for m in events) + encode_message(END)
                await ami.push_raw(data)
                got = [item for item in await _live(client) if not isinstance(item, AmiConnected | Resynced)]
            if got and isinstance(got[0], FullyBooted) and got[0].timestamp is None:
                got = got[1:]  # the fake server's own FullyBooted, sent with the login reply
            expected = reference(events)
            assert got == expected, name
            skipped += len(events) - len(expected)
    assert skipped > 100, "the traces hold untyped kinds (Newexten, DeviceStateChange …): some were left out"
