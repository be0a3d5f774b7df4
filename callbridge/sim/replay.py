"""Send recorded AMI actions to the simulator at their recorded (simulated) times; capture the replies.

The simulator runs on its manual clock, so a replay is deterministic and takes no wall time: before
each action, simulated time is advanced to the action's recorded time; after sending it, the replay
waits for the reply (matched by ActionID). ``hooks`` play the lab harness's part (SIPp phones
pressing keys, a carrier call arriving, ``core restart now``) at their recorded times.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from callbridge.ami.framing import AmiFramer, AmiMessage
from callbridge.sim.fidelity import TimedAction

if TYPE_CHECKING:
    from callbridge.sim.simulator import Simulator

Hook = tuple[float, Callable[[], None]]


class _Conn:
    def __init__(self) -> None:
        self.received = bytearray()
        self.framer = AmiFramer()
        self.ids: set[str] = set()
        self.bridges: list[str] = []
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, host: str, port: int) -> None:
        reader, self.writer = await asyncio.open_connection(host, port)
        self.framer = AmiFramer()
        self.task = asyncio.create_task(self._pump(reader))

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            self.received.extend(data)
            for frame in self.framer.feed(data):
                if isinstance(frame, AmiMessage) and frame.kind == "response":
                    self.ids.add(frame.get("ActionID"))
                elif isinstance(frame, AmiMessage) and frame.name == "BridgeCreate":
                    self.bridges.append(frame.get("BridgeUniqueid"))

    @property
    def closed(self) -> bool:
        return self.task is None or self.task.done()


async def replay_virtual(sim: Simulator, actions: list[TimedAction], *, secret: str = "",
                         hooks: list[Hook] | None = None, linger: float = 1.0,
                         reply_timeout: float = 5.0, recorded: list[AmiMessage] | None = None) -> bytes:
    """Replay against an embedded simulator started with ``manual_clock=True``; returns the bytes received.

    With ``recorded``, bridge ids in actions are translated: the n-th bridge the recording created is
    the n-th bridge the simulator created.
    """
    recorded_bridges = [m.get("BridgeUniqueid") for m in recorded or [] if m.name == "BridgeCreate"]
    conn = _Conn()
    await conn.open("127.0.0.1", sim.port)
    timeline: list[tuple[float, int, TimedAction | Callable[[], None]]] = [
        (a.at, i, a) for i, a in enumerate(actions)]
    timeline += [(at, len(actions) + i, fn) for i, (at, fn) in enumerate(hooks or [])]
    timeline.sort(key=lambda item: (item[0], item[1]))
    last = 0.0
    for at, _, item in timeline:
        await sim.advance_to(max(at, sim.sched.now))
        last = at
        if not isinstance(item, TimedAction):
            item()
            await sim.advance(0)
            continue
        for _ in range(10):  # let a close by the server be noticed before writing
            if conn.closed:
                break
            await asyncio.sleep(0.001)
        if conn.closed:
            await conn.open("127.0.0.1", sim.port)
        text = item.text
        if secret:
            text = re.sub(rb"(?m)^Secret: .*$", b"Secret: " + secret.encode(), text)
        for old, new in zip(recorded_bridges, conn.bridges, strict=False):
            text = text.replace(old.encode(), new.encode())
        match = re.search(rb"(?m)^ActionID: (.*?)\r?$", text)
        action_id = match.group(1).decode() if match else ""
        assert conn.writer is not None
        conn.writer.write(text)
        with contextlib.suppress(ConnectionError):
            await conn.writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + reply_timeout
        while action_id and action_id not in conn.ids and not conn.closed and loop.time() < deadline:
            await sim.advance(0)
            await asyncio.sleep(0.001)
        await sim.advance(0)
    await sim.advance_to(last + linger)
    await asyncio.sleep(0.01)
    if conn.task is not None:
        conn.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await conn.task
    if conn.writer is not None:
        conn.writer.close()
    return bytes(conn.received)
