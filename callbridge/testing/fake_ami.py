"""A small scripted AMI server over real TCP, for adapter tests (the simulator is the full one).

It speaks like Asterisk 22 as recorded in ``tests/fixtures/asterisk-22``: the banner, plain and
MD5 (Challenge) login — a wrong secret gets ``Response: Error`` after a delay and the socket is
closed —, ``Ping`` answered with ``Ping: Pong`` + ``Timestamp``, and the list replies of the resync
actions built from :attr:`FakeAmi.channels`, :attr:`~FakeAmi.bridges`, :attr:`~FakeAmi.queue_events`
and :attr:`~FakeAmi.conferences`. Tests push events (optionally byte by byte), drop connections,
stall (stop answering with TCP kept open) and read every action received.

    async with FakeAmi(secret="s3cret") as ami:
        ... ami.host, ami.port, await ami.push_event([("Event", "Hangup"), ...]) ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from callbridge.ami.framing import AmiFramer, AmiMessage, encode_message

Headers = Sequence[tuple[str, str]]
#: A custom reply: given the action, the frames to send (empty: send nothing, the action stays unanswered).
Responder = Callable[[AmiMessage], list[Headers]]

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


@dataclass(eq=False)
class _Session:
    number: int
    writer: asyncio.StreamWriter
    logged_in: bool = False


@dataclass(eq=False)
class FakeAmi:
    username: str = "callbridge"
    secret: str = "callbridge"  # noqa: S105  # a test fixture's credential, not a secret
    challenge: str = "840415273"
    login_fail_delay: float = 0.05  # real Asterisk waits about a second
    host: str = "127.0.0.1"
    port: int = 0
    #: CoreShowChannel items (headers after Event/ActionID).
    channels: list[Headers] = field(default_factory=list)
    #: bridge id → BridgeInfoChannel items.
    bridges: dict[str, list[Headers]] = field(default_factory=dict)
    #: complete QueueParams / QueueMember / QueueEntry events (with their Event header).
    queue_events: list[Headers] = field(default_factory=list)
    #: room → ConfbridgeList items.
    conferences: dict[str, list[Headers]] = field(default_factory=dict)
    #: action name → custom reply (overrides the built-in one).
    responders: dict[str, Responder] = field(default_factory=dict)
    #: action name → events written just before its reply (live events arriving mid-resync).
    events_before_reply: dict[str, list[Headers]] = field(default_factory=dict)
    #: every action received, all connections, in order.
    received: list[AmiMessage] = field(default_factory=list)
    #: while True nothing is answered or pushed (a half-open peer); actions are still recorded.
    stalled: bool = False
    connections: int = 0

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeAmi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        # Aborted connections end their handlers (EOF); cancelling them instead makes asyncio's
        # StreamReaderProtocol log a spurious error on Python 3.11.
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=2.0)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._server is not None:
            await self._server.wait_closed()

    # -- test controls -----------------------------------------------------------------------------

    def actions(self, name: str) -> list[AmiMessage]:
        return [m for m in self.received if m.name.lower() == name.lower()]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                changed = self._changed
                await changed.wait()

    async def wait_for_action(self, name: str, count: int = 1, within: float = 5.0) -> AmiMessage:
        await self.wait_for(lambda: len(self.actions(name)) >= count, within)
        return self.actions(name)[count - 1]

    @property
    def logged_in_sessions(self) -> int:
        return sum(1 for s in self._sessions if s.logged_in)

    def drop_connections(self) -> None:
        """Reset every client connection (like a crash or a cable pulled and put back)."""
        for session in list(self._sessions):
            transport = session.writer.transport
            transport.abort()

    async def push_event(self, headers: Headers, *, byte_by_byte: bool = False) -> None:
        await self.push_raw(encode_message(headers), byte_by_byte=byte_by_byte)

    async def push_raw(self, data: bytes, *, byte_by_byte: bool = False) -> None:
        """Write raw bytes to every logged-in session (byte by byte: one write per byte)."""
        for session in [s for s in self._sessions if s.logged_in]:
            if not byte_by_byte:
                session.writer.write(data)
                await session.writer.drain()
                continue
            for i in range(len(data)):
                session.writer.write(data[i : i + 1])
                await session.writer.drain()
                # Give the reader a turn so each byte arrives in its own read.
                await asyncio.sleep(0.001)

    # -- server side -------------------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        session = _Session(self.connections, writer)
        self._sessions.add(session)
        self._notify()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framer = AmiFramer(expect_banner=False)
        try:
            writer.write(BANNER)
            while data := await reader.read(4096):
                for frame in framer.feed(data):
                    if isinstance(frame, AmiMessage) and frame.kind == "action":
                        self.received.append(frame)
                        self._notify()
                        if not self.stalled and not await self._answer(session, frame):
                            return
        except (ConnectionError, OSError):
            pass
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)
            writer.transport.abort()
            self._notify()

    async def _answer(self, session: _Session, msg: AmiMessage) -> bool:
        """Reply to one action; False when the session must end."""
        name = msg.name.lower()
        aid = msg.get("ActionID")
        if name == "login":
            return await self._login(session, msg)
        if name == "logoff":
            await self._send(
                session, [[("Response", "Goodbye"), ("ActionID", aid), ("Message", "Thanks for all the fish.")]]
            )
            return False
        if msg.name in self.responders:
            await self._send(session, self.responders[msg.name](msg))
            return True
        frames: list[Headers]
        if name == "challenge":
            frames = [[("Response", "Success"), ("ActionID", aid), ("Challenge", self.challenge)]]
        elif name == "ping":
            frames = [
                [("Response", "Success"), ("ActionID", aid), ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]
            ]
        else:
            frames = self._builtin(msg, aid)
        await self._send(session, [*self.events_before_reply.get(msg.name, []), *frames])
        return True

    async def _login(self, session: _Session, msg: AmiMessage) -> bool:
        aid = msg.get("ActionID")
        if msg.get("AuthType").lower() == "md5":
            expected = hashlib.md5((self.challenge + self.secret).encode(), usedforsecurity=False).hexdigest()
            ok = msg.get("Key") == expected
        else:
            ok = msg.get("Secret") == self.secret
        ok = ok and msg.get("Username") == self.username
        if not ok:
            await asyncio.sleep(self.login_fail_delay)
            await self._send(
                session, [[("Response", "Error"), ("ActionID", aid), ("Message", "Authentication failed")]]
            )
            return False
        session.logged_in = True
        self._notify()
        await self._send(
            session,
            [
                [("Response", "Success"), ("ActionID", aid), ("Message", "Authentication accepted")],
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", "3"),
                    ("LastReload", "3"),
                    ("Status", "Fully Booted"),
                ],
            ],
        )
        return True

    def _builtin(self, msg: AmiMessage, aid: str) -> list[Headers]:
        """The built-in answer to an action no responder took (a plain success for one it does not know)."""
        listing = {
            "coreshowchannels": self._core_show_channels,
            "bridgelist": self._bridge_list,
            "bridgeinfo": self._bridge_info,
            "queuestatus": self._queue_status,
            "confbridgelistrooms": self._confbridge_list_rooms,
            "confbridgelist": self._confbridge_list,
        }.get(msg.name.lower())
        if listing is None:
            return [[("Response", "Success"), ("ActionID", aid), ("Message", f"{msg.name} done")]]
        return listing(msg, aid)

    def _core_show_channels(self, _msg: AmiMessage, aid: str) -> list[Headers]:
        return _list(aid, "Channels will follow", "CoreShowChannel", self.channels, "CoreShowChannelsComplete")

    def _bridge_list(self, _msg: AmiMessage, aid: str) -> list[Headers]:
        items = [
            [
                ("BridgeUniqueid", b),
                ("BridgeType", "basic"),
                ("BridgeTechnology", "simple_bridge"),
                ("BridgeNumChannels", str(len(chans))),
            ]
            for b, chans in self.bridges.items()
        ]
        return _list(aid, "Bridge listing will follow", "BridgeListItem", items, "BridgeListComplete")

    def _bridge_info(self, msg: AmiMessage, aid: str) -> list[Headers]:
        bridge = msg.get("BridgeUniqueid")
        if bridge not in self.bridges:
            return [_error(aid, f"Bridge {bridge} not found")]
        frames = _list(
            aid,
            "Bridge channel listing will follow",
            "BridgeInfoChannel",
            self.bridges[bridge],
            "BridgeInfoComplete",
        )
        frames[-1] = [*frames[-1], ("BridgeUniqueid", bridge), ("BridgeType", "basic")]
        return frames

    def _queue_status(self, _msg: AmiMessage, aid: str) -> list[Headers]:
        events = [[*ev[:1], ("ActionID", aid), *ev[1:]] for ev in self.queue_events]
        return [
            [
                ("Response", "Success"),
                ("ActionID", aid),
                ("EventList", "start"),
                ("Message", "Queue status will follow"),
            ],
            *events,
            [
                ("Event", "QueueStatusComplete"),
                ("ActionID", aid),
                ("EventList", "Complete"),
                ("ListItems", str(len(events))),
            ],
        ]

    def _confbridge_list_rooms(self, _msg: AmiMessage, aid: str) -> list[Headers]:
        if not self.conferences:
            return [_error(aid, "No active conferences.")]
        rooms = [
            [("Conference", room), ("Parties", str(len(p))), ("Marked", "0"), ("Locked", "No"), ("Muted", "No")]
            for room, p in self.conferences.items()
        ]
        return _list(
            aid, "Confbridge conferences will follow", "ConfbridgeListRooms", rooms, "ConfbridgeListRoomsComplete"
        )

    def _confbridge_list(self, msg: AmiMessage, aid: str) -> list[Headers]:
        room = msg.get("Conference")
        if room not in self.conferences:
            return [_error(aid, "No Conference by that name found.")]
        parties = [[("Conference", room), *p] for p in self.conferences[room]]
        return _list(aid, "Confbridge user list will follow", "ConfbridgeList", parties, "ConfbridgeListComplete")

    async def _send(self, session: _Session, frames: list[Headers]) -> None:
        if self.stalled or not frames:
            return
        session.writer.write(b"".join(encode_message(f) for f in frames))
        await session.writer.drain()


def _error(aid: str, message: str) -> Headers:
    return [("Response", "Error"), ("ActionID", aid), ("Message", message)]


def _list(aid: str, message: str, item: str, items: Sequence[Headers], complete: str) -> list[Headers]:
    frames: list[Headers] = [[("Response", "Success"), ("ActionID", aid), ("EventList", "start"), ("Message", message)]]
    frames += [[("Event", item), ("ActionID", aid), *headers] for headers in items]
    frames.append([("Event", complete), ("ActionID", aid), ("EventList", "Complete"), ("ListItems", str(len(items)))])
    return frames
