"""The AMI protocol side of the simulator: TCP sessions, login, permissions, event fan-out.

Replies are written before the events the action caused (the action's events are held while the
handler runs), every frame goes through :func:`callbridge.ami.framing.encode_message`, and each
session filters events by its user's read classes and its ``Events`` mask.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from callbridge.ami.framing import AmiFramer, AmiMessage, encode_message
from callbridge.errors import UnsafeValueError
from callbridge.sim.replies import Deferred, Reply
from callbridge.sim.world import Event

if TYPE_CHECKING:
    from callbridge.sim.actions import Handler
    from callbridge.sim.simulator import Simulator

log = structlog.get_logger("callbridge.sim.server")

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
# Write class each action needs (manager.c); actions not listed need none.
WRITE_CLASS = {"originate": "originate", "command": "command", "setvar": "call", "redirect": "call",
               "hangup": "call", "blindtransfer": "call", "atxfer": "call", "bridge": "call",
               "queueadd": "agent", "queueremove": "agent", "queuepause": "agent", "simcontrol": "system"}


@dataclass(frozen=True, slots=True)
class AmiUser:
    name: str
    secret: str
    read: frozenset[str] = frozenset({"all"})
    write: frozenset[str] = frozenset({"all"})


@dataclass(slots=True, eq=False)
class Session:
    writer: asyncio.StreamWriter
    session_id: str
    user: AmiUser | None = None
    events_on: bool = True
    mask: frozenset[str] | None = None  # classes chosen with Events EventMask: a,b
    challenge: str = ""
    holding: list[bytes] | None = None
    closed: bool = False
    boot_pending: bool = False
    started: float = field(default_factory=time.time)

    def wants(self, privilege: str) -> bool:
        if self.user is None or not self.events_on:
            return False
        classes = set(privilege.split(","))
        classes.discard("all")
        allowed = self.user.read
        if "all" not in allowed and not classes & allowed:
            return False
        return self.mask is None or bool(classes & self.mask) or "all" in self.mask

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.holding is not None:
            self.holding.append(data)
            return
        self.writer.write(data)


class AmiServer:
    def __init__(self, sim: Simulator, users: list[AmiUser], login_fail_delay: float = 1.0) -> None:
        self.sim = sim
        self.users = {u.name: u for u in users}
        self.login_fail_delay = login_fail_delay
        self.sessions: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.stalled: asyncio.Event = asyncio.Event()
        self.stalled.set()  # set = not stalled
        self.booted = True
        self.shutting_down = False  # between core restart/stop and Shutdown: every action refused

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- fan-out --------------------------------------------------------------------------------
    def broadcast(self, event: Event) -> None:
        name, privilege, headers = event
        if not self.sessions:
            return
        try:
            data = encode_message([("Event", name), ("Privilege", privilege), *headers])
        except UnsafeValueError as exc:
            log.warning("sim.event_dropped", event=name, header=exc.header)
            return
        for session in list(self.sessions):
            if session.wants(privilege):
                session.send(data)

    def send_raw(self, data: bytes) -> None:
        for session in list(self.sessions):
            if session.user is not None:
                session.send(data)

    def drop_all(self) -> None:
        for session in list(self.sessions):
            self._close(session)

    def _close(self, session: Session) -> None:
        session.closed = True
        self.sessions.discard(session)
        with contextlib.suppress(Exception):
            session.writer.close()

    # --- one connection -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = Session(writer, f"0x{secrets.randbits(44):x}")
        self.sessions.add(session)
        framer = AmiFramer(expect_banner=False)
        try:
            writer.write(BANNER)
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for frame in framer.feed(data):
                    if not isinstance(frame, AmiMessage):
                        continue
                    await self.stalled.wait()
                    await self._handle(session, frame)
                    if self._is_closed(session):
                        break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._close(session)
            if task is not None:
                self._tasks.discard(task)

    @staticmethod
    def _is_closed(session: Session) -> bool:
        return session.closed

    def _reply(self, session: Session, action_id: str, reply: Reply) -> None:
        for frame in reply.frames:
            if action_id and not any(k == "ActionID" for k, _ in frame):
                frame = [frame[0], ("ActionID", action_id), *frame[1:]]
            try:
                session.send(encode_message(frame))
            except UnsafeValueError as exc:
                log.warning("sim.reply_dropped", header=exc.header)
        if reply.close:
            with contextlib.suppress(Exception):
                session.writer.write(b"".join(session.holding or []))
            session.holding = None
            self._close(session)

    async def _handle(self, session: Session, msg: AmiMessage) -> None:
        action = msg.get("Action")
        action_id = msg.get("ActionID")
        key = action.lower()
        answered = self._session_action(session, action, key)
        if answered is not None:
            self._reply(session, action_id, answered)
        elif key == "login":
            await self._login(session, msg)
        else:
            handler, refused = self._handler(session, msg, key)
            if handler is not None:
                await self._run(session, msg, action, handler)
            elif refused is not None:
                self._reply(session, action_id, refused)
            else:
                self._reply(session, action_id, _err(
                    f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."))
                self._security(session, "RequestBadFormat", "Error", [("RequestType", f"Action: {action}")])

    def _session_action(self, session: Session, action: str, key: str) -> Reply | None:
        """The reply to what the session itself answers before any login (None: not one of those)."""
        if not action:
            return _err("Missing action in request")
        if self.shutting_down:
            # Asterisk refuses every action, Login included, between "core restart now" and its Shutdown
            # event (live PBX: "Ping failed: Asterisk is shutting down", then the same for a new Login)
            return _err("Asterisk is shutting down")
        if key == "challenge":
            session.challenge = str(secrets.randbelow(10**9)).zfill(9)
            return Reply([[("Response", "Success"), ("Challenge", session.challenge)]])
        if key == "logoff":
            return Reply([[("Response", "Goodbye"), ("Message", "Thanks for all the fish.")]], close=True)
        return None

    def _handler(self, session: Session, msg: AmiMessage, key: str) -> tuple[Handler | None, Reply | None]:
        """The logged-in user's handler for ``key``, or the reply instead (Events, a refusal); (None, None):
        no such action."""
        user = session.user
        if user is None:
            return None, _err("Permission denied")
        if key == "events":
            return None, self._events(session, msg)
        handler = self.sim.handlers.get(key)
        if handler is None:
            return None, None
        need = WRITE_CLASS.get(key)
        if need and "all" not in user.write and need not in user.write:
            return None, _err("Permission denied")
        return handler, None

    async def _run(self, session: Session, msg: AmiMessage, action: str, handler: Handler) -> None:
        """Run one action's handler; what it emits meanwhile is held until its reply is written."""
        action_id = msg.get("ActionID")
        session.holding = []
        try:
            result = handler(self.sim, msg)
            if isinstance(result, Deferred):
                held, session.holding = session.holding, None
                for data in held:
                    session.send(data)
                result = await _wait(result)
                session.holding = []
            self._reply(session, action_id, result)
        except Exception:  # a bug in one handler must not kill the session
            log.exception("sim.action_failed", action=action)
            self._reply(session, action_id, _err("Internal error"))
        finally:
            held, session.holding = session.holding or [], None
            for data in held:
                session.send(data)

    def _events(self, session: Session, msg: AmiMessage) -> Reply:
        mask = msg.get("EventMask").strip().lower()
        if mask in ("off", "none", "0", "no", "false"):
            session.events_on = False
            return Reply([[("Response", "Success"), ("Events", "Off")]])
        session.events_on = True
        session.mask = None if mask in ("on", "all", "1", "yes", "true", "") else frozenset(
            c.strip() for c in mask.split(","))
        return Reply([[("Response", "Success"), ("Events", "On")]])

    async def _login(self, session: Session, msg: AmiMessage) -> None:
        action_id = msg.get("ActionID")
        user = self.users.get(msg.get("Username"))
        ok = False
        if user is not None:
            if msg.get("AuthType").lower() == "md5":
                expected = hashlib.md5((session.challenge + user.secret).encode(), usedforsecurity=False).hexdigest()
                ok = bool(session.challenge) and hmac.compare_digest(expected, msg.get("Key").lower())
            else:
                ok = hmac.compare_digest(user.secret.encode(), msg.get("Secret").encode())
        if not ok:
            # Asterisk answers a failed login only after a delay, then closes (trace 01a).
            await asyncio.sleep(self.login_fail_delay)
            self._reply(session, action_id, Reply([[("Response", "Error"), ("Message", "Authentication failed")]],
                                                  close=True))
            return
        session.user = user
        self._reply(session, action_id, _ok("Authentication accepted"))
        if self.booted:
            self._fully_booted(session)
        else:
            # Logged in while the PBX is still starting: FullyBooted comes when boot ends (trace 20).
            session.boot_pending = True
        self._security(session, "SuccessfulAuth", "Informational", [("UsingPassword", "0")])

    def _fully_booted(self, session: Session) -> None:
        session.boot_pending = False
        uptime = str(int(time.time() - self.sim.started_at))
        if session.wants("system,all"):
            session.send(encode_message([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
                                         ("LastReload", uptime), ("Status", "Fully Booted")]))

    def boot_finished(self) -> None:
        self.booted = True
        for session in list(self.sessions):
            if session.boot_pending:
                self._fully_booted(session)

    def _security(self, session: Session, name: str, severity: str, extra: list[tuple[str, str]]) -> None:
        if not session.wants("security,all") or session.user is None:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())
        peer = session.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = session.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        headers = [("Event", name), ("Privilege", "security,all"), ("EventTV", now), ("Severity", severity),
                   ("Service", "AMI"), ("EventVersion", "1"), ("AccountID", session.user.name),
                   ("SessionID", session.session_id), ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                   ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"), *extra, ("SessionTV", now)]
        session.send(encode_message(headers))


def _ok(message: str) -> Reply:
    return Reply([[("Response", "Success"), ("Message", message)]])


def _err(message: str) -> Reply:
    return Reply([[("Response", "Error"), ("Message", message)]])


async def _wait(deferred: Deferred) -> Reply:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Reply] = loop.create_future()

    def resolve(reply: Reply) -> None:
        if not future.done():
            future.set_result(reply)

    deferred.add_callback(resolve)
    return await future


Starter = Callable[[], Awaitable[None]]
