"""The AMI wire protocol of one TCP connection: byte-correct framing and reply correlation.

panoramisk is the transport library, but its own parsing is replaced here:

* ``AMIProtocol.data_received`` decodes every TCP read on its own (``data.decode(enc, "ignore")``),
  so a UTF-8 character split across two reads is silently dropped ("张三" → "张"). We split bytes
  with :class:`~callbridge.ami.framing.AmiFramer` and decode whole messages.
* ``AMIProtocol.close`` puts actions that got no reply on the Manager's ``awaiting_actions`` and
  the Manager re-sends them after reconnecting, which would run a transfer twice. Here an action
  whose reply is lost fails with :class:`~callbridge.errors.AmiOutcomeUnknown` and is never re-sent.

One :class:`AmiProtocol` lives exactly as long as its TCP connection; the client makes a new one
for every (re)connect, so nothing pending can leak into the next session.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import structlog
from panoramisk.ami_protocol import AMIProtocol

from callbridge.errors import AmiActionError, AmiConnectionLost, AmiOutcomeUnknown

from .actions import Action
from .event_types import AmiEvent
from .framing import AmiFramer, AmiMessage, Banner, MalformedFrame, encode_message

log = structlog.get_logger(__name__)

# ActionIDs are unique per process: a random per-process prefix plus one shared counter.
_ACTION_PREFIX = f"cb-{os.getpid()}-{secrets.token_hex(3)}-"
_ACTION_COUNTER = itertools.count(1)


def next_action_id() -> str:
    """A new ActionID (what :class:`PendingActions` correlates replies by)."""
    return f"{_ACTION_PREFIX}{next(_ACTION_COUNTER)}"


@dataclass(frozen=True, slots=True)
class RawReply:
    """The reply to one action inside the adapter: the Response and, for lists, its events."""

    action: str
    action_id: str
    response: AmiMessage
    events: tuple[AmiMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """What :meth:`AmiClient.send` returns.

    ``events`` holds the list events of an EventList action (``QueueStatus`` …) in wire order,
    ending with its ``…Complete`` event (which carries e.g. ``BridgeInfoComplete``'s bridge).
    """

    action: str
    action_id: str
    success: bool
    message: str
    headers: tuple[tuple[str, str], ...]
    events: tuple[AmiEvent, ...] = ()

    def get(self, name: str, default: str = "") -> str:
        """A header of the Response (e.g. ``Value`` of Getvar, ``Challenge`` of Challenge)."""
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass(slots=True)
class _Pending:
    action: str
    future: asyncio.Future[RawReply]
    response: AmiMessage | None = None  # set once an ``EventList: start`` response arrived
    events: list[AmiMessage] = field(default_factory=list)


class PendingActions:
    """Actions written on one connection and not answered yet, keyed by ActionID."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, action: str, action_id: str) -> asyncio.Future[RawReply]:
        if action_id in self._by_id:
            raise ValueError(f"duplicate ActionID {action_id}")
        future: asyncio.Future[RawReply] = asyncio.get_running_loop().create_future()
        self._by_id[action_id] = _Pending(action, future)
        return future

    def forget(self, action_id: str) -> None:
        self._by_id.pop(action_id, None)

    def on_response(self, msg: AmiMessage) -> bool:
        """Resolve a pending action from its Response; False if no action waits for it."""
        action_id = msg.get("ActionID")
        pending = self._by_id.get(action_id)
        if pending is None or pending.response is not None:
            return False
        if msg.name == "Error":
            del self._by_id[action_id]
            _settle_error(pending.future, AmiActionError(pending.action, msg.get("Message"), action_id))
        elif msg.get("EventList").lower() == "start":
            pending.response = msg  # list events follow, up to the ``EventList: Complete`` event
        else:
            del self._by_id[action_id]
            _settle(pending.future, RawReply(pending.action, action_id, msg))
        return True

    def on_event(self, msg: AmiMessage) -> bool:
        """Collect a list event of a pending EventList action; False for every other event."""
        action_id = msg.get("ActionID")
        if not action_id:
            return False
        pending = self._by_id.get(action_id)
        if pending is None or pending.response is None:
            # e.g. OriginateResponse: carries the ActionID but is a live event after the reply.
            return False
        pending.events.append(msg)
        if msg.get("EventList").lower() == "complete":
            del self._by_id[action_id]
            _settle(pending.future, RawReply(pending.action, action_id, pending.response, tuple(pending.events)))
        return True

    def fail_all(self) -> None:
        """The connection is gone: every written action has an unknown outcome."""
        pending, self._by_id = self._by_id, {}
        for action_id, entry in pending.items():
            _settle_error(entry.future, AmiOutcomeUnknown(entry.action, action_id))


def _settle(future: asyncio.Future[RawReply], reply: RawReply) -> None:
    if not future.done():
        future.set_result(reply)


def _settle_error(future: asyncio.Future[RawReply], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
        # A caller that timed out no longer awaits it; mark retrieved so asyncio does not warn.
        future.exception()


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's protocol class with our framing, correlation and loss handling.

    ``on_event`` receives every message that is not a reply (live events, stray responses are
    logged); it is called synchronously from ``data_received``, so it must not block. With
    ``on_events``, the events of a read go to it in runs instead (same messages, same order, one call per
    run of events between two frames that are no live event: a reply, a list item of a pending action).
    """

    def __init__(
        self,
        on_event: Callable[[AmiMessage], None],
        *,
        peer: str = "",
        on_events: Callable[[list[AmiMessage]], None] | None = None,
    ) -> None:
        # panoramisk's AMIProtocol has no __init__ of its own; its state is set in connection_made,
        # which we replace entirely (its queue/responses/factory are not used).
        self._on_event = on_event
        self._on_events = on_events
        self._peer = peer
        self._framer = AmiFramer()
        self.pending = PendingActions()
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        #: Resolves with the reason once the connection is gone (never raises).
        self.closed: asyncio.Future[str] = loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        pending = self.pending  # read live below: a reply dispatched in this read may be the last awaited
        frames = self._framer.feed(data)
        on_events = self._on_events
        if on_events is None:
            for frame in frames:
                self._one_frame(frame)
            return
        # The events of the read go to ``on_events`` in runs, one call per run: an event can only be a list item
        # of a pending action when it carries an ActionID (PendingActions.on_event), so while actions await
        # their reply the others still go in the run; a reply, a list item or a banner ends the run (in order).
        run: list[AmiMessage] = []
        for frame in frames:
            if type(frame) is AmiMessage and frame.kind == "event" and not (pending and frame.get("ActionID")):
                run.append(frame)
                continue
            if run:
                on_events(run)
                run = []
            self._one_frame(frame)
        if run:
            on_events(run)

    def _one_frame(self, frame: object) -> None:
        if isinstance(frame, AmiMessage):
            if not self.pending and frame.kind == "event":
                self._on_event(frame)  # nothing awaits a reply, so no event can be a list item: skip correlation
            else:
                self._dispatch(frame)
        elif isinstance(frame, Banner):
            if not self.banner.done():
                self.banner.set_result(frame.text)
        elif isinstance(frame, MalformedFrame):
            self._malformed(frame)

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._mark_closed(f"connection lost: {exc}" if exc else "connection closed by peer")

    def send(self, *args: object, **kwargs: object) -> NoReturn:
        # panoramisk's untyped, unchecked writer must not be reachable through this class.
        raise NotImplementedError("use send_action(action, action_id): typed and checked")

    # -- our API -----------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self.closed.done()

    def pause_reading(self) -> None:
        """Stop reading the socket (back-pressure: see :mod:`callbridge.ami.intake`); writes go on."""
        if self.is_open and self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.is_open and self._transport is not None:
            self._transport.resume_reading()

    def send_action(self, action: Action, action_id: str) -> asyncio.Future[RawReply]:
        """Write one action; the future resolves with its reply (or AmiActionError/OutcomeUnknown).

        The frame is encoded (and every header checked) before anything is registered or written.
        """
        headers = action.to_headers()
        data = encode_message([headers[0], ("ActionID", action_id), *headers[1:]])
        if not self.is_open or self._transport is None:
            raise AmiConnectionLost(f"{action.name}: not connected")
        future = self.pending.add(action.name, action_id)
        self._transport.write(data)
        return future

    def abort(self, reason: str) -> None:
        """Drop the connection now (e.g. keepalive timeout on a half-open TCP connection)."""
        if self._transport is not None:
            self._transport.abort()
        self._mark_closed(reason)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._mark_closed("closed by us")

    # -- internals ---------------------------------------------------------------------------------

    def _mark_closed(self, reason: str) -> None:
        if self.closed.done():
            return
        self.closed.set_result(reason)
        if not self.banner.done():
            self.banner.set_exception(AmiConnectionLost(reason))
            self.banner.exception()
        self.pending.fail_all()

    def _dispatch(self, msg: AmiMessage) -> None:
        kind = msg.kind
        if kind == "response":
            if not self.pending.on_response(msg):
                log.warning("ami.reply_unmatched", peer=self._peer, action_id=msg.get("ActionID"))
        elif kind == "event":
            if not self.pending.on_event(msg):
                self._on_event(msg)
        else:
            log.warning("ami.frame_unexpected", peer=self._peer, first_header=msg.headers[0][0])

    def _malformed(self, frame: MalformedFrame) -> None:
        # Never raise on odd input: log what we could not read and keep the connection.
        log.warning("ami.frame_malformed", peer=self._peer, reason=frame.reason, raw=frame.raw[:200])
