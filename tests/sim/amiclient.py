"""A minimal AMI test client over real TCP (framing from callbridge.ami.framing)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from callbridge.ami.framing import AmiFramer, AmiMessage, Banner, MalformedFrame, encode_message

TIMEOUT = 5.0


class TestClient:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.banner = ""
        self.events: list[AmiMessage] = []
        self.responses: dict[str, list[AmiMessage]] = {}
        self.malformed: list[MalformedFrame] = []
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int) -> TestClient:
        client = cls()
        reader, client._writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        client._task = asyncio.create_task(client._pump(reader))
        await client.wait_for(lambda: bool(client.banner))
        return client

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        framer = AmiFramer()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for frame in framer.feed(data):
                    if isinstance(frame, Banner):
                        self.banner = frame.text
                    elif isinstance(frame, MalformedFrame):
                        self.malformed.append(frame)
                    elif frame.kind == "response":
                        self.responses.setdefault(frame.get("ActionID"), []).append(frame)
                    else:
                        # list items and completions carry the ActionID of their action
                        if frame.get("ActionID"):
                            self.responses.setdefault(frame.get("ActionID"), []).append(frame)
                        self.events.append(frame)
                self._changed.set()
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], within: float = TIMEOUT) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                if self.closed.is_set() and not predicate():
                    raise ConnectionError("connection closed while waiting")
                await self._changed.wait()

        await asyncio.wait_for(loop(), within)

    async def send(self, action: str, **headers: str) -> AmiMessage:
        """Send an action and return its Response frame."""
        action_id = f"t-{next(self._ids)}"
        await self.send_raw(action, action_id, **headers)
        await self.wait_for(lambda: any(m.kind == "response" for m in self.responses.get(action_id, [])))
        return next(m for m in self.responses[action_id] if m.kind == "response")

    async def send_raw(self, action: str, action_id: str = "", **headers: str) -> None:
        pairs = [("Action", action)] + ([("ActionID", action_id)] if action_id else [])
        pairs += [(k.replace("_", "-") if k.startswith("CID") else k, v) for k, v in headers.items()]
        assert self._writer is not None
        self._writer.write(encode_message(pairs))
        await self._writer.drain()

    async def send_list(self, action: str, **headers: str) -> list[AmiMessage]:
        """Send a list action; return every frame of its answer up to the …Complete event."""
        action_id = f"t-{next(self._ids)}"
        await self.send_raw(action, action_id, **headers)

        def complete() -> bool:
            frames = self.responses.get(action_id, [])
            return any(f.get("EventList") == "Complete" for f in frames) or any(
                f.kind == "response" and f.get("Response") == "Error" for f in frames)

        await self.wait_for(complete)
        return self.responses[action_id]

    async def login(self, user: str, secret: str) -> AmiMessage:
        return await self.send("Login", Username=user, Secret=secret)

    async def wait_event(self, name: str, within: float = TIMEOUT, **match: str) -> AmiMessage:
        def find() -> AmiMessage | None:
            for ev in self.events:
                if ev.name == name and all(ev.get(k) == v for k, v in match.items()):
                    return ev
            return None

        await self.wait_for(lambda: find() is not None, within)
        found = find()
        assert found is not None
        return found

    def named(self, name: str, **match: str) -> list[AmiMessage]:
        return [e for e in self.events if e.name == name and all(e.get(k) == v for k, v in match.items())]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
