"""An action already on the wire, and the reply it is owed (what :meth:`AmiClient.write_now` returns).

Writing and waiting are two steps so that a caller can write in the loop iteration that decided the action
(the one-key path: no task is created and nothing yields before the bytes are handed to the socket) and
await the reply later, from a task of its own. Nothing here creates a coroutine until the reply is awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from callbridge.errors import AmiOutcomeUnknown

from .actions import Action
from .decode import decode
from .protocol import AmiProtocol, AmiResponse, RawReply, next_action_id


class WrittenAction:
    """One action written to ``proto`` (its bytes are on the transport); ``await`` it for its
    :class:`AmiResponse`, or :meth:`raw` for the adapter's :class:`RawReply`. The wait raises
    AmiActionError (``Response: Error``) or AmiOutcomeUnknown (no reply within ``timeout``, or the
    connection dropped after the write: it may or may not have run, it is never re-sent)."""

    __slots__ = ("_future", "_proto", "_timeout", "action", "action_id")

    def __init__(self, proto: AmiProtocol, action: Action, timeout: float) -> None:
        self.action = action
        self.action_id = next_action_id()
        self._proto, self._timeout = proto, timeout
        # encodes and checks every header, registers the reply, writes: raises before writing anything
        self._future = proto.send_action(action, self.action_id)

    def __await__(self) -> Generator[Any, None, AmiResponse]:
        return self._response().__await__()

    async def _response(self) -> AmiResponse:
        return to_response(await self.raw())

    async def raw(self) -> RawReply:
        future = self._future
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel (close()) when
            # the future completes at the same moment.
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError:
            raise AmiOutcomeUnknown(self.action.name, self.action_id) from None
        finally:
            if not future.done() or future.cancelled():
                self._proto.pending.forget(self.action_id)


def to_response(reply: RawReply) -> AmiResponse:
    msg = reply.response
    return AmiResponse(action=reply.action, action_id=reply.action_id, success=msg.name != "Error",
                       message=msg.get("Message"), headers=msg.headers, events=tuple(decode(m) for m in reply.events))
