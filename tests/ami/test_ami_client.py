"""AmiClient over real TCP against the scripted FakeAmi server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from callbridge.ami.actions import CoreStatus, Getvar, QueueStatus, Redirect, Setvar
from callbridge.ami.client import AmiClient, AmiConnected, AmiLost, ConnState, ReconnectPolicy, Resynced, StreamItem
from callbridge.ami.event_types import (
    BridgeInfoComplete,
    CoreShowChannel,
    FullyBooted,
    GenericEvent,
    Newchannel,
    QueueEntry,
)
from callbridge.ami.protocol import AmiProtocol
from callbridge.errors import AmiActionError, AmiConnectionLost, AmiLoginError, AmiOutcomeUnknown, UnsafeValueError
from callbridge.settings import AmiSettings
from callbridge.testing.fake_ami import FakeAmi
from callbridge.testing.ports import free_port

T = TypeVar("T")
SECRET = "s3cret"


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    async with FakeAmi(secret=SECRET) as server:
        yield server


def make_client(ami: FakeAmi, **overrides: Any) -> AmiClient:
    options: dict[str, Any] = {
        # Keepalive off by default so a slow CI box cannot cause a spurious reconnect.
        "ping_interval": 30.0,
        "ping_timeout": 5.0,
        "connect_timeout": 2.0,
        "login_timeout": 2.0,
        "action_timeout": 2.0,
        "resync_timeout": 3.0,
        "policy": ReconnectPolicy(initial=0.01, maximum=0.05, login_retry=30.0),
    }
    options.update(overrides)
    secret = options.pop("secret", SECRET)
    return AmiClient(ami.host, ami.port, "callbridge", secret, **options)


class Items:
    """Reads a client's stream with a timeout on every await."""

    def __init__(self, client: AmiClient) -> None:
        self._it = client.stream()
        self.seen: list[StreamItem] = []

    async def stop(self) -> None:
        """The consumer leaves the stream (closes its generator)."""
        await self._it.aclose()

    async def next(self, within: float = 5.0) -> StreamItem:
        async with asyncio.timeout(within):
            item = await anext(self._it)
        self.seen.append(item)
        return item

    async def ready(self) -> None:
        """Skip to the first live event slot: Resynced, then FullyBooted (sent with the login reply)."""
        await self.until(Resynced)
        assert isinstance(await self.next(), FullyBooted)

    async def until(self, kind: type[T], within: float = 5.0) -> T:
        async with asyncio.timeout(within):
            while True:
                item = await self.next()
                if isinstance(item, kind):
                    return item


def names(events: tuple[Any, ...]) -> list[str]:
    return [e.event_name for e in events]


async def test_plain_login_resync_then_live_events(ami: FakeAmi) -> None:
    ami.channels = [
        [("Channel", "PJSIP/agent1001-00000001"), ("ChannelState", "6"), ("CallerIDNum", "1001"),
         ("Uniqueid", "u1"), ("Linkedid", "u0"), ("BridgeId", "b1")],
    ]  # fmt: skip
    ami.bridges = {"b1": [[("Channel", "PJSIP/agent1001-00000001"), ("Uniqueid", "u1"), ("Linkedid", "u0")]]}
    ami.queue_events = [
        [("Event", "QueueParams"), ("Queue", "support"), ("Calls", "1")],
        [("Event", "QueueEntry"), ("Queue", "support"), ("Position", "1"), ("Channel", "Local/a@sim-1;1"),
         ("Uniqueid", "qa"), ("CallerIDNum", "13900000002"), ("Priority", "10")],
    ]  # fmt: skip
    ami.conferences = {"3way": [[("Channel", "PJSIP/agent1002-00000002"), ("Uniqueid", "u2")]]}
    async with make_client(ami) as client:
        items = Items(client)
        connected = await items.next()
        assert isinstance(connected, AmiConnected) and connected.banner == "Asterisk Call Manager/11.0.0"
        resynced = await items.next()
        assert isinstance(resynced, Resynced)
        assert names(resynced.events) == [
            "CoreShowChannel", "CoreShowChannelsComplete", "BridgeListItem", "BridgeListComplete",
            "BridgeInfoChannel", "BridgeInfoComplete", "QueueParams", "QueueEntry", "QueueStatusComplete",
            "ConfbridgeListRooms", "ConfbridgeListRoomsComplete", "ConfbridgeList", "ConfbridgeListComplete",
        ]  # fmt: skip
        channel = resynced.events[0]
        assert isinstance(channel, CoreShowChannel) and channel.snap.uniqueid == "u1"
        assert isinstance(resynced.events[5], BridgeInfoComplete) and resynced.events[5].bridge.bridge_id == "b1"
        entry = resynced.events[7]
        assert isinstance(entry, QueueEntry) and entry.priority == 10
        await client.wait_connected(5)
        assert client.state is ConnState.CONNECTED
        # FullyBooted came with the login reply, before the resync: it is delivered after it.
        assert isinstance(await items.next(), FullyBooted)

        await ami.push_event([("Event", "Newchannel"), ("Channel", "PJSIP/agent1003-00000003"), ("Uniqueid", "u3")])
        live = await items.next()
        assert isinstance(live, Newchannel) and live.snap.uniqueid == "u3"

    login = ami.actions("Login")[0]
    assert login.get("Username") == "callbridge" and login.get("Secret") == SECRET
    sent = [m.name for m in ami.received if m.name not in ("Login", "Ping", "Logoff")]
    # the four lists are pipelined, then the details they call for; events still come in list order
    assert sent == ["CoreShowChannels", "BridgeList", "QueueStatus", "ConfbridgeListRooms", "BridgeInfo",
                    "ConfbridgeList"]  # fmt: skip
    assert ami.actions("BridgeInfo")[0].get("BridgeUniqueid") == "b1"
    assert ami.actions("ConfbridgeList")[0].get("Conference") == "3way"
    action_ids = [m.get("ActionID") for m in ami.received]
    assert len(set(action_ids)) == len(action_ids) and all(action_ids)


async def test_md5_login_never_sends_the_secret(ami: FakeAmi) -> None:
    async with make_client(ami, auth="md5") as client:
        await client.wait_connected(5)
    challenge, login = ami.received[0], ami.received[1]
    assert challenge.name == "Challenge" and challenge.get("AuthType") == "MD5"
    assert login.name == "Login" and login.get("AuthType") == "md5" and len(login.get("Key")) == 32
    assert not any(SECRET in value for m in ami.received for _, value in m.headers)


async def test_failed_login_is_an_error_and_no_retry_storm(ami: FakeAmi) -> None:
    async with make_client(ami, secret="wrong") as client:
        with pytest.raises(AmiLoginError):
            await client.wait_connected(5)
        assert client.state is ConnState.LOGIN_FAILED
        # The normal backoff here is 10-50 ms: a storm would log in again many times in this window.
        await asyncio.sleep(0.3)
        assert len(ami.actions("Login")) == 1
        assert client.state is ConnState.LOGIN_FAILED
        with pytest.raises(AmiConnectionLost):
            await client.send(CoreStatus())


async def test_md5_login_with_wrong_secret_fails_too(ami: FakeAmi) -> None:
    async with make_client(ami, auth="md5", secret="wrong") as client:
        with pytest.raises(AmiLoginError):
            await client.wait_connected(5)


async def test_keepalive_detects_a_stalled_server_and_reconnects(ami: FakeAmi) -> None:
    async with make_client(ami, ping_interval=0.1, ping_timeout=0.3) as client:
        items = Items(client)
        await items.until(Resynced)
        ami.stalled = True  # TCP stays open, nothing is answered: a half-open connection
        lost = await items.until(AmiLost)
        assert "keepalive" in lost.reason
        assert ami.actions("Ping")  # the unanswered keepalive
        ami.stalled = False
        await items.until(AmiConnected)
        await items.until(Resynced)
        assert ami.connections == 2


async def test_resync_is_delivered_before_live_events_of_the_new_session(ami: FakeAmi) -> None:
    # A live event written by the server in the middle of the resync (before the CoreShowChannels reply).
    early = [("Event", "Newchannel"), ("Channel", "PJSIP/agent1001-00000009"), ("Uniqueid", "early")]
    ami.events_before_reply["CoreShowChannels"] = [early]
    async with make_client(ami) as client:
        items = Items(client)
        for _session in range(2):
            assert isinstance(await items.next(), AmiConnected)
            assert isinstance(await items.next(), Resynced)
            assert isinstance(await items.next(), FullyBooted)
            live = await items.next()
            assert isinstance(live, Newchannel) and live.snap.uniqueid == "early"
            ami.drop_connections()
            assert isinstance(await items.next(), AmiLost)
    assert ami.connections == 2


async def test_action_in_flight_when_the_connection_drops_is_never_sent_again(ami: FakeAmi) -> None:
    ami.responders["Redirect"] = lambda msg: []  # Asterisk never gets to answer
    redirect = Redirect(channel="PJSIP/agent1001-00000001", context="cb-to-12345", exten="12345")
    async with make_client(ami) as client:
        items = Items(client)
        await client.wait_connected(5)
        pending = asyncio.create_task(client.send(redirect, timeout=5))
        await ami.wait_for_action("Redirect")
        ami.drop_connections()
        with pytest.raises(AmiOutcomeUnknown) as caught:
            await asyncio.wait_for(pending, 5)
        assert caught.value.action == "Redirect"
        await items.until(AmiLost)
        await items.until(Resynced)
        # An action answered in the new session: a re-sent Redirect would have been received first.
        assert (await client.send(CoreStatus())).success
    assert ami.connections == 2
    assert len(ami.actions("Redirect")) == 1


async def test_reply_timeout_is_outcome_unknown_and_error_reply_is_action_error(ami: FakeAmi) -> None:
    ami.responders["Redirect"] = lambda msg: []
    ami.responders["Getvar"] = lambda msg: [
        [("Response", "Error"), ("ActionID", msg.get("ActionID")), ("Message", "No such channel")]
    ]
    async with make_client(ami) as client:
        await client.wait_connected(5)
        with pytest.raises(AmiOutcomeUnknown):
            await client.send(Redirect(channel="A", context="c", exten="1"), timeout=0.2)
        with pytest.raises(AmiActionError) as caught:
            await client.send(Getvar(channel="PJSIP/gone-00000001", variable="CB_XFER_ID"))
        assert caught.value.reason == "No such channel"
        reply = await client.send(QueueStatus())
        assert reply.success and names(reply.events) == ["QueueStatusComplete"]
        assert client.connected


async def test_send_while_disconnected_fails_fast() -> None:
    port = free_port()
    # Nothing listens on ``port`` now.
    client = AmiClient("127.0.0.1", port, "callbridge", SECRET, policy=ReconnectPolicy(initial=0.01, maximum=0.02))
    async with client:
        with pytest.raises(AmiConnectionLost):
            await client.send(CoreStatus())
        with pytest.raises(TimeoutError):
            await client.wait_connected(0.2)
        assert client.policy.attempts >= 2  # it keeps trying


async def test_unsafe_value_is_refused_and_nothing_is_written(ami: FakeAmi) -> None:
    async with make_client(ami) as client:
        await client.wait_connected(5)
        before = len(ami.received)
        with pytest.raises(UnsafeValueError):
            await client.send(Setvar(channel="PJSIP/a-1", variable="CB_SUMMARY", value="ok\r\nAction: Hangup"))
        await client.send(CoreStatus())
        assert [m.name for m in ami.received[before:]] == ["CoreStatus"]
        assert client.connected


async def test_utf8_name_written_byte_by_byte_arrives_intact(ami: FakeAmi, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = AmiProtocol.data_received

    def recording(self: AmiProtocol, data: bytes) -> None:
        reads.append(len(data))
        original(self, data)

    monkeypatch.setattr(AmiProtocol, "data_received", recording)
    event = [("Event", "Newchannel"), ("Channel", "PJSIP/13800138000-00000001"), ("CallerIDName", "张三"),
             ("Uniqueid", "utf8")]  # fmt: skip
    async with make_client(ami) as client:
        items = Items(client)
        await items.ready()
        reads.clear()
        await ami.push_event(event, byte_by_byte=True)
        live = await items.next()
    assert isinstance(live, Newchannel) and live.snap.caller_name == "张三"
    assert len(reads) > 1  # the frame really arrived in pieces


async def test_bare_lf_frames_and_malformed_frames_do_not_stop_the_client(ami: FakeAmi) -> None:
    async with make_client(ami) as client:
        items = Items(client)
        await items.ready()
        await ami.push_raw(b"Event: Newchannel\nChannel: Local/a@sim-1;1\nUniqueid: lf\n\n")
        lf = await items.next()
        assert isinstance(lf, Newchannel) and lf.snap.uniqueid == "lf"
        await ami.push_raw(b"this line has no colon\r\nnor this one\r\n\r\n")
        await ami.push_raw(b"Event: Cb-After\r\nX: 1\r\n\r\n")
        after = await items.next()
        assert isinstance(after, GenericEvent) and after.name == "Cb-After"
        assert (await client.send(CoreStatus())).success
        assert ami.connections == 1


async def test_close_ends_the_stream_and_later_sends_fail(ami: FakeAmi) -> None:
    client = make_client(ami)
    async with client:
        await client.wait_connected(5)
    items = Items(client)
    seen = [await items.next() for _ in range(4)]
    assert [type(i) for i in seen] == [AmiConnected, Resynced, FullyBooted, AmiLost]
    assert seen[-1] == AmiLost("client closed")
    with pytest.raises(StopAsyncIteration):
        await items.next()
    assert client.state is ConnState.CLOSED
    with pytest.raises(AmiConnectionLost):
        await client.send(CoreStatus())


async def test_from_settings_uses_the_ami_section(ami: FakeAmi) -> None:
    settings = AmiSettings(host=ami.host, port=ami.port, username="callbridge", secret=SecretStr(SECRET), auth="md5")
    async with AmiClient.from_settings(settings, policy=ReconnectPolicy(initial=0.01)) as client:
        await client.wait_connected(5)
        assert client.ping_interval == settings.ping_interval
    assert [m.name for m in ami.received[:2]] == ["Challenge", "Login"]


async def test_close_during_the_long_login_pause_returns_at_once(ami: FakeAmi) -> None:
    client = make_client(ami, secret="wrong", policy=ReconnectPolicy(login_retry=3600.0))
    async with asyncio.timeout(5), client:
        with pytest.raises(AmiLoginError):
            await client.wait_connected(5)
    # Leaving the block closed the client although its next attempt was an hour away.
    assert client.state is ConnState.CLOSED


async def test_batches_give_what_stream_gives_one_read_at_a_time(ami: FakeAmi) -> None:
    # Many events in one write, a malformed frame and a stray response between them, a reconnect, then
    # close: batches() must hand over exactly stream()'s items in stream()'s order.
    one = b"Event: Newchannel\r\nChannel: PJSIP/a-%08d\r\nUniqueid: b%d\r\n\r\n"
    burst = b"".join(one % (i, i) for i in range(300))
    client = make_client(ami)
    got: list[StreamItem] = []
    sizes: list[int] = []

    after_seen, reconnected = asyncio.Event(), asyncio.Event()

    async def read() -> None:
        async for batch in client.batches():
            sizes.append(len(batch))
            got.extend(batch)
            if any(isinstance(i, GenericEvent) and i.name == "Cb-After" for i in batch):
                after_seen.set()
            if sum(isinstance(i, Resynced) for i in got) == 2:
                reconnected.set()

    async with client:
        reader = asyncio.create_task(read())
        await client.wait_connected(5)
        await ami.push_raw(burst)
        await ami.push_raw(b"no colon here\r\n\r\nResponse: Success\r\nActionID: nobody\r\n\r\n")
        await ami.push_raw(b"Event: Cb-After\r\nX: 1\r\n\r\n")
        async with asyncio.timeout(5):
            await after_seen.wait()
        ami.drop_connections()
        async with asyncio.timeout(5):
            await reconnected.wait()
    async with asyncio.timeout(5):
        await reader
    kinds = [type(i) for i in got]
    assert kinds[:3] == [AmiConnected, Resynced, FullyBooted] and kinds[-1] is AmiLost
    live = [i for i in got if isinstance(i, Newchannel)]
    assert [e.snap.uniqueid for e in live] == [f"b{i}" for i in range(300)]
    assert kinds.count(AmiConnected) == 2 and kinds.count(AmiLost) == 2  # the reconnect, then close
    assert max(sizes) > 1  # a read of many events is one batch, not one resumption per event
    with pytest.raises(StopAsyncIteration):  # closed: later calls end at once
        await anext(client.batches().__aiter__())


async def test_a_stream_left_midway_leaves_the_rest_of_its_read_to_the_next_stream(ami: FakeAmi) -> None:
    # stream() hands over batches() one item at a time: the items of a read it had taken but not yet
    # given out when its consumer stopped stay for the next stream(), in order, before anything newer.
    one = b"Event: Newchannel\r\nChannel: PJSIP/a-%08d\r\nUniqueid: c%d\r\n\r\n"
    client = make_client(ami)
    async with client:
        first = Items(client)
        await first.ready()
        await ami.push_raw(b"".join(one % (i, i) for i in range(50)))
        taken = await first.until(Newchannel)
        await first.stop()
        await ami.push_raw(one % (50, 50))
        second = Items(client)
        rest = [await second.until(Newchannel) for _ in range(50)]
    assert [e.snap.uniqueid for e in [taken, *rest]] == [f"c{i}" for i in range(51)]
