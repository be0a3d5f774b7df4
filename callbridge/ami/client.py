"""The AMI client: connect, log in, resync, keep alive, reconnect forever — and never re-send.

Decisions (see also the module docstring of :mod:`callbridge.ami.protocol`):

* **Transport**: panoramisk's ``AMIProtocol`` (subclassed in :mod:`.protocol`) on
  ``loop.create_connection``. panoramisk's ``Manager`` is not used: its reconnect loop re-sends
  unanswered actions, its pinger never checks the reply and its callbacks spawn unowned tasks.
* **Login failure** (wrong credentials): :class:`AmiLoginError`. The loop does *not* stop (an
  operator may fix ``manager.conf`` and reload) but backs off to ``ReconnectPolicy.login_retry``
  (60 s by default), so a bad secret never becomes a login storm. ``wait_connected()`` raises it.
* **Actions while disconnected** fail fast with :class:`AmiConnectionLost` (nothing is queued for
  later: a queued transfer could run long after the agent gave up). Callers who prefer to wait use
  ``await client.wait_connected(timeout)`` first.
* **Reply lost** (connection dropped or reply timed out after the action was written):
  :class:`AmiOutcomeUnknown`; the caller reconciles against the next ``Resynced``.
* **Stream order**: per session ``AmiConnected``, ``Resynced(events)``, then live events (those that
  arrived during the resync were buffered), then ``AmiLost(reason)``. One consumer.

The back-off and connection state (:class:`ReconnectPolicy`, :class:`ConnState`: :mod:`.client_policy`) are
pure; this module holds what does I/O: session loop, login, keepalive, action/reply correlation, the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from typing import TYPE_CHECKING, Any, Literal

import structlog

from callbridge.errors import AmiActionError, AmiConnectionLost, AmiLoginError, AmiOutcomeUnknown

from .actions import Action, Challenge, Login, Ping, md5_key
from .client_policy import ConnState, ReconnectPolicy
from .decode import decode, kinds_read
from .event_types import AmiEvent
from .framing import AmiMessage
from .intake import CHUNK, IngestGate
from .protocol import AmiProtocol, AmiResponse, RawReply
from .resync import collect_resync
from .stream import AmiConnected, AmiLost, Resynced, StreamItem
from .written import WrittenAction

__all__ = ["AmiClient", "AmiConnected", "AmiLost", "AmiResponse", "ConnState", "ReconnectPolicy", "Resynced",
           "StreamItem", "WrittenAction"]  # fmt: skip

if TYPE_CHECKING:
    from callbridge.settings import AmiSettings

log = structlog.get_logger(__name__)

# --- the client ---------------------------------------------------------------------------------


class AmiClient:
    """One logical AMI connection to one Asterisk, kept up until :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        auth: Literal["plain", "md5"] = "plain",
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        login_timeout: float = 5.0,
        action_timeout: float = 10.0,
        resync_timeout: float = 15.0,
        events: str = "on",
        policy: ReconnectPolicy | None = None,
        untyped: Iterable[str] | None = None,
    ) -> None:
        """``untyped``: the event kinds without a typed class the consumer reads (as :class:`GenericEvent`); the
        other untyped kinds are left out before any object is built for them. ``None``: every event."""
        self.host, self.port = host, port
        self._username, self._secret, self._auth = username, secret, auth
        self._events = events
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.connect_timeout, self.login_timeout = connect_timeout, login_timeout
        self.action_timeout, self.resync_timeout = action_timeout, resync_timeout
        self.policy = policy or ReconnectPolicy()
        self._proto: AmiProtocol | None = None  # set only while logged in
        # The stream's hand-off: a deque and one waiter future, not an asyncio.Queue — the consumer
        # takes every item already read without suspending, and a TCP read of many events costs one
        # wake-up instead of a Queue.put_nowait/get pair (and its putter/getter bookkeeping) per event.
        self._items: deque[StreamItem | None] = deque()  # None: closed
        self._waiter: asyncio.Future[None] | None = None
        self._resync_buffer: list[AmiEvent] | None = None
        self._read: frozenset[str] | None = None if untyped is None else kinds_read(untyped)
        #: Bounds what waits in ``_items`` (pauses reading the socket) and counts it (see .intake).
        self.intake = IngestGate()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._login_error: AmiLoginError | None = None
        self._closing = False
        self._stopping = asyncio.Event()
        self._log = log.bind(host=host, port=port, username=username)

    @classmethod
    def from_settings(cls, settings: AmiSettings, **overrides: Any) -> AmiClient:
        """Build from ``settings.ami`` (the secret comes from env / secret_file, see settings.py)."""
        options: dict[str, Any] = {
            "auth": settings.auth,
            "ping_interval": settings.ping_interval,
            "ping_timeout": settings.ping_timeout,
            "connect_timeout": settings.connect_timeout,
            "action_timeout": settings.action_timeout,
        }
        options.update(overrides)
        return cls(settings.host, settings.port, settings.username, settings.secret_value(), **options)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> AmiClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the connection loop (it runs until :meth:`close`)."""
        if self._tasks or self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._run(), name=f"ami-{self.host}:{self.port}")
        self._tasks.add(task)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stopping.set()
        proto, self._proto = self._proto, None
        if proto is not None:
            proto.close()
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.policy.closed()
        self._notify()
        self._emit(None)

    @property
    def state(self) -> ConnState:
        return self.policy.state

    @property
    def connected(self) -> bool:
        return self._proto is not None and self._proto.is_open

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109  # bounded by design
        """Wait until logged in and resynced; raises AmiLoginError, TimeoutError, AmiConnectionLost."""
        async with asyncio.timeout(timeout):
            while True:
                if self.state is ConnState.CONNECTED and self.connected:
                    return
                if self._login_error is not None:
                    raise self._login_error
                if self._closing:
                    raise AmiConnectionLost("client closed")
                await self._changed.wait()

    # -- actions -----------------------------------------------------------------------------------

    # ``timeout`` is part of the contract: it bounds the wait for the *reply* and turns into
    # AmiOutcomeUnknown (the action was written), which a caller's own cancel scope cannot express.
    async def send(self, action: Action, timeout: float | None = None) -> AmiResponse:  # noqa: ASYNC109
        """Send one action once. Raises UnsafeValueError (nothing written), AmiConnectionLost (not
        connected, nothing written), AmiActionError (``Response: Error``) or AmiOutcomeUnknown."""
        return await self.write_now(action, timeout)

    def write_now(self, action: Action, timeout: float | None = None) -> WrittenAction:
        """:meth:`send` in two steps: the action's bytes are handed to the transport before this returns
        (no task, no yield: in the caller's loop iteration); await the result for the reply. Raises at
        once UnsafeValueError or AmiConnectionLost (nothing written); the wait raises as :meth:`send`."""
        proto = self._proto
        if proto is None or not proto.is_open:
            action.to_headers()  # an unsafe value is a local error even while disconnected
            raise AmiConnectionLost(f"{action.name}: not connected to {self.host}:{self.port}")
        return WrittenAction(proto, action, self.action_timeout if timeout is None else timeout)

    async def _request(self, proto: AmiProtocol, action: Action, reply_timeout: float) -> RawReply:
        return await WrittenAction(proto, action, reply_timeout).raw()

    # -- stream ------------------------------------------------------------------------------------

    async def stream(self) -> AsyncGenerator[StreamItem, None]:
        """Connection items and typed events, in order, until :meth:`close` (single consumer): what
        :meth:`batches` hands over, one item at a time."""
        async for batch in self.batches():
            for at, item in enumerate(batch):
                try:
                    yield item
                except GeneratorExit:  # the consumer stopped: what it did not take is the next stream()'s
                    self._items.extendleft(reversed(batch[at + 1 :]))
                    raise

    async def batches(self) -> AsyncGenerator[list[StreamItem], None]:
        """The stream's items in order, as lists of the items already read (up to ``intake.CHUNK`` at a time):
        the consumer resumes once per list instead of once per event (the daemon's path; single consumer).
        Between two lists the event loop gets a turn once ``intake.SLICE_S`` of consuming is spent."""
        items = self._items
        while True:
            if not items:
                while not items:
                    waiter = self._waiter = asyncio.get_running_loop().create_future()
                    try:
                        await waiter
                    finally:
                        if self._waiter is waiter:
                            self._waiter = None
                self.intake.begin_slice()
            if items[-1] is None:  # closed: None is the last item ever added (close() adds it last)
                batch = [item for item in items if item is not None]
                items.clear()
                items.append(None)  # left in place: later calls end too
                if batch:
                    yield batch
                return
            if len(items) <= CHUNK:
                batch = list(items)  # type: ignore[arg-type]  # no None in it (checked above)
                items.clear()
            else:
                batch = [items.popleft() for _ in range(CHUNK)]  # type: ignore[misc]  # None is only last
            self.intake.drained(len(items))
            yield batch
            if items and self.intake.slice_spent():
                await asyncio.sleep(0)  # the loop runs (HTTP, the MQTT pump, the flush) before the next slice
                self.intake.begin_slice()

    def _emit(self, item: StreamItem | None) -> None:
        self._items.append(item)
        self.intake.filled(len(self._items))
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _on_events(self, msgs: list[AmiMessage]) -> None:
        """The events of one TCP read, decoded and handed over at once (see AmiProtocol)."""
        read = self._read
        try:  # typed_event: built by the C framing loop
            if read is None:
                events = [m.typed_event or decode(m) for m in msgs]
            else:
                events = [m.typed_event or decode(m) for m in msgs if m.typed_event is not None or m.name in read]
        except Exception:  # decode promises not to raise; if it does, one by one: only the bad one is lost
            for msg in msgs:
                self._on_event(msg)
            return
        if self._resync_buffer is not None:
            self._resync_buffer.extend(events)
        else:
            self._items.extend(events)
            self.intake.filled(len(self._items))
            self._wake()

    def _on_event(self, msg: AmiMessage) -> None:
        read = self._read
        if read is not None and msg.typed_event is None and msg.name not in read:
            return  # a kind nobody reads (see __init__)
        try:
            event = decode(msg)
        except Exception:  # decode promises not to raise; a bug there must not kill the connection
            self._log.exception("ami.decode_failed", event=msg.name)
            return
        if self._resync_buffer is not None:
            self._resync_buffer.append(event)
        else:
            self._emit(event)

    # -- connection loop ---------------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        while not self._closing:
            attempt = self.policy.connecting()
            self._notify()
            self._log.info("ami.connect_attempt", attempt=attempt)
            try:
                reason = await self._session()
                self._log.warning("ami.connection_lost", reason=reason)
                delay = self.policy.failed()
            except AmiLoginError as exc:
                self._login_error = exc
                delay = self.policy.login_failed()
                self._log.error("ami.login_failed", reason=str(exc), retry_in=round(delay, 3))
            except (OSError, TimeoutError, AmiConnectionLost, AmiOutcomeUnknown, AmiActionError) as exc:
                delay = self.policy.failed()
                self._log.warning("ami.connect_failed", error=repr(exc), retry_in=round(delay, 3))
            except Exception:  # a bug must not end "reconnect forever"; it is logged loudly instead
                delay = self.policy.failed()
                self._log.exception("ami.session_crashed", retry_in=round(delay, 3))
            self._notify()
            # Back off, but wake at once when close() is called (the login pause can be a minute).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self) -> str:
        """One TCP session: connect, log in, resync, keep alive. Returns why it ended."""
        loop = asyncio.get_running_loop()
        peer = f"{self.host}:{self.port}"
        async with asyncio.timeout(self.connect_timeout):
            _, proto = await loop.create_connection(
                lambda: AmiProtocol(self._on_event, peer=peer, on_events=self._on_events), self.host, self.port
            )
        assert isinstance(proto, AmiProtocol)
        self.intake.attach(proto.pause_reading, proto.resume_reading)
        announced = False
        reason = "closed"
        # Events of the new session (FullyBooted arrives with the login reply) wait until the
        # resync snapshot is on the stream.
        self._resync_buffer = []
        try:
            async with asyncio.timeout(self.login_timeout):
                banner = await proto.banner
                await self._login(proto)
            self._login_error = None
            self._proto = proto
            self.policy.resyncing()
            self._emit(AmiConnected(self.host, self.port, banner))
            announced = True
            async with asyncio.timeout(self.resync_timeout):
                listed = await collect_resync(lambda a: self._request(proto, a, self.action_timeout))
            self._emit(Resynced(tuple(decode(m) for m in listed)))
            buffered, self._resync_buffer = self._resync_buffer, None
            for event in buffered:
                self._emit(event)
            self.policy.connected()
            self._notify()
            self._log.info("ami.connected", banner=banner, resync_events=len(listed))
            reason = await self._keepalive(proto)
            return reason
        except asyncio.CancelledError:
            reason = "client closed" if self._closing else "cancelled"
            raise
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if announced:
                self._emit(AmiLost(reason))
            self._resync_buffer = None
            self._proto = None
            self.intake.detach()
            proto.close()

    async def _login(self, proto: AmiProtocol) -> None:
        try:
            if self._auth == "md5":
                reply = await self._request(proto, Challenge(), self.login_timeout)
                key = md5_key(reply.response.get("Challenge"), self._secret)
                login = Login(username=self._username, key=key, events=self._events)
            else:
                login = Login(username=self._username, secret=self._secret, events=self._events)
            await self._request(proto, login, self.login_timeout)
        except AmiActionError as exc:
            if "shutting down" in exc.reason.lower():
                # Asterisk refuses every action while it stops or restarts, Login included: not our
                # credentials, so the normal reconnect backoff (live PBX, core restart now)
                raise
            raise AmiLoginError(f"{self._username}@{self.host}:{self.port}: {exc.reason}") from None

    async def _keepalive(self, proto: AmiProtocol) -> str:
        """Ping every ``ping_interval``; a reply missing for ``ping_timeout`` means a dead TCP path.

        A half-open connection is therefore detected within ``ping_interval + ping_timeout``.
        """
        while True:
            done, _ = await asyncio.wait({proto.closed}, timeout=self.ping_interval)
            if done:
                return proto.closed.result()
            arrivals = self.intake.arrivals
            try:
                await self._request(proto, Ping(), self.ping_timeout)
            except AmiOutcomeUnknown:
                if not proto.closed.done() and self.intake.carrying(arrivals):
                    continue  # its reply waits behind a flood we are still reading: the path is alive
                reason = proto.closed.result() if proto.closed.done() else "keepalive timeout"
                proto.abort(reason)
                return reason

