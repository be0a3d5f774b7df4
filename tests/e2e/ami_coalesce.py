"""A TCP relay between a daemon and its simulated PBX that delivers a burst of AMI events in one TCP write.

Asterisk sends a queue's ``QueueCallerJoin`` and the ringing of the agent it dials (``AgentCalled``,
``DialBegin``, ``Newstate``) within one TCP read of the daemon; the simulator spreads them over loop ticks
(and runs on the daemon's loop), so the daemon reads them apart. Behind this relay, once the PBX → daemon
stream holds ``trigger``, what follows is held for ``hold_s`` and then written with it at once: the daemon
sees the burst as one read, as it does beside the real PBX. Loopback only, port picked free.
"""

from __future__ import annotations

import asyncio
import contextlib


class CoalescingRelay:
    def __init__(self, upstream_port: int, *, trigger: bytes, hold_s: float = 0.3) -> None:
        self.upstream_port = upstream_port
        self.trigger = trigger
        self.hold_s = hold_s
        self.bursts = 0  # how many held bursts were written at once
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await t

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        pbx_r, pbx_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for coro in (self._pipe(client_r, pbx_w), self._held(pbx_r, client_w)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def _held(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """PBX → daemon: pass through, except a burst from ``trigger`` on, held and written in one go."""
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if self.trigger in data:
                    data += await self._more(src)
                    self.bursts += 1
                dst.write(data)
                await dst.drain()
        dst.close()

    async def _more(self, src: asyncio.StreamReader) -> bytes:
        held = b""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.hold_s
        while (left := until - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    chunk = await src.read(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            held += chunk
        return held
