"""The agent console (``/console``): a signed-in desk per agent, live over SSE, acting through the MQTT
command path.

Sign-in (``POST /console/login``, JSON): ``key`` and ``secret`` of the agent's command key (the same key
file as MQTT, ``mqtt.command_keys_file``), ``agent`` (endpoint, ``agent1001``), ``role`` (``agent`` or
``supervisor``) and ``hotline`` (the desk's hotline, which the key must cover). The key is checked by
sending a signed ``status`` command through the command processor; where no command key is configured
and unsigned commands are allowed (MQTT on loopback: a lab), the web token stands in for the secret. The
session is a random cookie (HttpOnly, SameSite=Strict); the secret stays in the daemon's memory.

Every action (``POST /console/cmd/<verb>``) becomes a command body — ``role``, ``agent`` and ``key`` set
from the session, never from the page — signed with the session's key and handed to the **same**
:class:`~callbridge.bus.commands.CommandProcessor` as MQTT commands: the same strict models (the
:mod:`callbridge.bus.idents` alphabets), the same role and key checks, the same engine scope checks.
The reply is the command's reply (the execution result for a command the PBX decides).

``GET /console/stream`` (SSE) pushes the desk's view (:mod:`callbridge.web.console_state`) whenever an
event changed something, and every ``tick_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from callbridge.bus import idents
from callbridge.bus.commands import VERBS, CommandProcessor, IncomingCommand, sign
from callbridge.bus.principals import refusal
from callbridge.dialplan.plan import Dialplan
from callbridge.domain import DomainEvent
from callbridge.web.console_state import ConsoleState, Desk, endpoint
from callbridge.web.http import Request, Response

PREFIX = "/console"
COOKIE = "cb_console"
#: Verbs a console may send (status is what sign-in uses).
CONSOLE_VERBS = frozenset({"transfer", "three_way", "complete", "cancel", "leave", "set_priority", "set_mode",
                           "handover_feedback", "nuisance_release", "overflow_now", "status"})  # fmt: skip
#: Fields the session decides; a page's value for them is ignored.
SESSION_FIELDS = ("role", "agent", "key", "sig", "reply_to", "correlation_id")
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
SSE_HEADERS = "text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    desk: Desk
    key: str | None  # None: an unsigned lab session
    secret: bytes | None
    lang: str = "zh"


class Console:
    def __init__(
        self,
        processor: CommandProcessor,
        *,
        plan: Callable[[], Dialplan],
        mode: Callable[[], str],
        clock: Callable[[], float],
        lab_token: str | None = None,
        outcome_timeout_s: float = 15.0,
        tick_s: float = 1.0,
    ) -> None:
        self.processor = processor
        self.plan = plan
        self.clock = clock
        self.lab_token = lab_token
        self.outcome_timeout_s = outcome_timeout_s
        self.tick_s = tick_s
        self.state = ConsoleState(mode())
        self._mode = mode
        self._sessions: dict[str, Session] = {}
        self._listeners: set[asyncio.Event] = set()

    # --- the event sink ------------------------------------------------------------------------------

    def feed(self, events: Sequence[DomainEvent]) -> None:
        self.state.feed(events)
        for listener in self._listeners:
            listener.set()

    # --- routing -------------------------------------------------------------------------------------

    async def handle(self, req: Request) -> Response:
        path = req.path.removeprefix(PREFIX) or "/"
        page = _page(path) if req.method != "POST" else None
        if page is not None:
            return page
        if path == "/login" and req.method == "POST":
            return await self._login(req)
        session = self._session(req)
        if session is None:
            return Response.error(401, "sign in first (POST /console/login)")
        if req.method == "POST" and req.header("x-console") != "1":  # a form of another site cannot set it
            return Response.error(403, "console actions need the X-Console header")
        return await self._signed_in(session, path, req)

    async def _signed_in(self, session: Session, path: str, req: Request) -> Response:
        if req.method == "POST" and path == "/logout":
            self._sessions.pop(session.id, None)
            return Response.json({"ok": True})
        if req.method == "POST" and path.startswith("/cmd/"):
            return await self._command(session, path.removeprefix("/cmd/"), req.body)
        if path in ("/me", "/view"):
            return Response.json(self.me(session) if path == "/me" else self.view(session))
        if path == "/stream":
            return Response(200, content_type=SSE_HEADERS, stream=self._stream(session))
        return Response.error(404, f"no such console page: {req.path}")

    def _session(self, req: Request) -> Session | None:
        for part in req.header("cookie").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value in self._sessions:
                return self._sessions[value]
        return None

    # --- sign-in -------------------------------------------------------------------------------------

    async def _login(self, req: Request) -> Response:
        form = _login_form(req.body)
        if isinstance(form, Response):
            return form
        desk = Desk(endpoint(form["agent"]), form["hotline"], form.get("role", "agent"))
        key = form.get("key") or None
        secret = str(form.get("secret") or "")
        refused = self._key_refusal(key, secret, desk)
        if refused is not None:
            return refused
        session = Session(secrets.token_urlsafe(24), desk, key, secret.encode() if key else None,
                          "en" if form.get("lang") == "en" else "zh")  # fmt: skip
        proof = await self.send(session, "status", {"hotline": desk.hotline})  # the processor checks the key
        if not proof.get("ok"):
            error = proof.get("error", {})
            return Response.json({"ok": False, "error": error}, 401 if error.get("code") == "bad_signature" else 403)
        self._sessions[session.id] = session
        resp = Response.json({"ok": True, **self.me(session)})
        resp.headers["Set-Cookie"] = f"{COOKIE}={session.id}; Path={PREFIX}; HttpOnly; SameSite=Strict"
        return resp

    def _key_refusal(self, key: str | None, secret: str, desk: Desk) -> Response | None:
        if key is None:
            return self._lab_refusal(secret)
        entry = self.processor.keys.get(key)
        principal = entry.principal() if entry is not None else None
        if principal is None:  # the signed status below says bad_signature
            return None
        if principal.hotlines is not None and desk.hotline not in principal.hotlines:
            return Response.error(403, f"key {key!r} does not cover hotline {desk.hotline}")
        # the processor's own rule for a call command (role granted, agent the key may speak for)
        why = refusal(principal, "transfer", desk.role, desk.agent)
        if why is not None:
            return Response.json({"ok": False, "error": {"code": "forbidden", "message": why}}, 403)
        return None

    def _lab_refusal(self, secret: str) -> Response | None:
        """Without a key: only where no command key is configured and unsigned commands are allowed."""
        if self.processor.keys or self.processor.secret is not None or self.processor.require_signature:
            return Response.error(401, "sign in with your command key")
        if self.lab_token is not None and not hmac.compare_digest(secret.encode(), self.lab_token.encode()):
            return Response.error(401, "wrong token")
        return None

    def me(self, session: Session) -> dict[str, Any]:
        plan = self.plan()
        hotlines = {h.number: h.name for h in plan.hotlines.values()}
        return {
            "agent": session.desk.agent, "hotline": session.desk.hotline, "role": session.desk.role,
            "lang": session.lang, "hotlines": hotlines, "destinations": self.destinations(session.desk),
            "modes": [{"name": m.name, "label": m.label} for m in plan.modes.values()],
            "categories": dict(plan.categories),
        }  # fmt: skip

    def destinations(self, desk: Desk) -> list[dict[str, Any]]:
        """One button per rule the dialplan allows from the desk's hotline in the running mode."""
        plan = self.plan()
        names = {h.number: h.name for h in plan.hotlines.values()}
        return [
            {"rule": r.id, "to_hotline": r.to_hotline, "name": names.get(r.to_hotline, r.to_hotline),
             "mode": r.mode, "target": r.target, "code": r.code, "label": r.label,
             "categories": list(r.categories), "shortcut": str(i + 1) if i < 9 else ""}
            for i, r in enumerate(plan.rules_from(desk.hotline, self._mode()))
        ]  # fmt: skip

    # --- actions -------------------------------------------------------------------------------------

    async def _command(self, session: Session, verb: str, raw_body: bytes) -> Response:
        if verb not in CONSOLE_VERBS:
            return Response.error(404, f"the console does not send {verb!r}")
        try:
            body = orjson.loads(raw_body or b"{}")
        except orjson.JSONDecodeError:
            return Response.error(400, "action body must be JSON")
        if not isinstance(body, dict):
            return Response.error(400, "action body must be a JSON object")
        reply = await self.send(session, verb, body)
        code = reply.get("error", {}).get("code", "")
        status = 200 if reply.get("ok") else 403 if code in ("forbidden", "unauthorised", "bad_signature") else 400
        return Response.json(reply, status)

    async def send(self, session: Session, verb: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``verb`` with ``fields`` as the session's agent, through the MQTT command processor; its reply."""
        body = {k: v for k, v in fields.items() if k not in SESSION_FIELDS}
        body["role"] = session.desk.role
        if "agent" in VERBS[verb].model_fields:
            body["agent"] = session.desk.agent
        props: dict[str, str] = {}
        if session.key is not None and session.secret is not None:
            body["key"] = session.key
        payload = orjson.dumps(body)
        if session.key is not None and session.secret is not None:
            props = {"sig": sign(session.secret, verb, payload), "key": session.key}
        msg = IncomingCommand(self.processor.topics.command(verb), payload, user_properties=props)
        first = await self.processor.process(msg)
        if first is None:  # broadcast mode and not ours: the console's daemon owns none of it
            return {"ok": False, "verb": verb, "error": {"code": "not_on_this_pbx", "message": "not on this PBX"}}
        if first.follow_up is not None:
            first = await self.processor.final(first, self.outcome_timeout_s)
        reply: dict[str, Any] = orjson.loads(first.payload)
        return reply

    # --- the live view -------------------------------------------------------------------------------

    def view(self, session: Session) -> dict[str, Any]:
        out = self.state.view(session.desk, self.clock())
        out["mode"] = self._mode()
        out["destinations"] = self.destinations(session.desk)
        return out

    async def _stream(self, session: Session) -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        changed = asyncio.Event()
        self._listeners.add(changed)
        last = b""
        try:
            while session.id in self._sessions:
                changed.clear()
                view = orjson.dumps(self.view(session))
                if view != last:
                    last = view
                    yield b"event: view\ndata: " + view + b"\n\n"
                else:
                    yield b": tick\n\n"  # a comment: keeps the connection and tells a dead client early
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.tick_s)
        finally:
            self._listeners.discard(changed)


def _login_form(body: bytes) -> dict[str, Any] | Response:
    try:
        form = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return Response.error(400, "sign-in body must be JSON")
    if not isinstance(form, dict):
        return Response.error(400, "sign-in body must be a JSON object")
    why = _bad_login_fields(form)
    return Response.error(400, why) if why else form


def _page(path: str) -> Response | None:
    if path in ("/", "/index.html"):
        return _static("console.html", "text/html; charset=utf-8")
    if path.startswith("/static/"):
        name = path.removeprefix("/static/")
        return _static(name, STATIC.get(name))
    return None


def _bad_login_fields(form: dict[str, Any]) -> str | None:
    """The same alphabets as commands: a sign-in value that could not be a command's is refused."""
    checks = (("agent", idents.AGENT, True), ("hotline", idents.HOTLINE, True), ("key", idents.KEY, False))
    for name, pattern, required in checks:
        value = form.get(name)
        if value is None and not required:
            continue
        if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
            return f"{name}: not a valid {name}"
    if form.get("role", "agent") not in ("agent", "supervisor"):
        return "role: agent or supervisor"
    if not isinstance(form.get("secret", ""), str):
        return "secret: text"
    return None


def _static(name: str, content_type: str | None) -> Response:
    if content_type is None:
        return Response.error(404, f"no such file: {name}")
    body = resources.files("callbridge.web").joinpath("static", name).read_bytes()
    return Response(200, body, content_type)
