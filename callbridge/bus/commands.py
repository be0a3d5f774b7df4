"""Commands in over MQTT: pydantic models per verb and a pure processor (no aiomqtt here).

Request: ``callbridge/<site>/cmd/<verb>`` with a JSON object body. Reply (JSON)::

    {"ok": true,  "verb": "status", "status": "done", "final": true, "result": {...}}
    {"ok": false, "verb": "transfer", "status": "refused", "final": true,
     "error": {"code": "invalid", "message": "...", "details": [...]}}

A command whose execution the PBX decides (``transfer``, ``three_way``, ``complete``, ``cancel``,
``leave``) gets two replies on the same reply topic and correlation data: ``"status": "accepted"``
(``final: false``: authorised, the AMI actions are being sent) and then the execution result,
``"status": "executing"`` (``ok: true``: the PBX took the actions; what follows is told by events) or
``"status": "failed"`` (``ok: false``, ``error.code`` e.g. ``ami_unavailable``, ``ami_failed``,
``ami_outcome_unknown``, ``outcome_timeout``). The handler announces it with :class:`FollowUp`.

Where the reply goes:

* MQTT 5: on the request's **response topic**, with its **correlation data** echoed as a property.
* MQTT 3.1.1 (no properties): on ``callbridge/<site>/reply/<reply_to>`` (``reply_to`` from the body,
  ``default`` when absent); the body's ``correlation_id`` is echoed in the reply JSON. The same
  fallback is used when a response topic is unsafe (a wildcard, or inside ``callbridge/<site>/`` but
  outside ``reply/`` — a reply must never land on an event or command topic).

Stable error codes: ``bad_json``, ``too_large``, ``invalid``, ``unknown_verb``, ``unauthorised``
(signature required but missing, or refused by the handler), ``bad_signature``, ``forbidden`` (the role
or the key does not allow it: :mod:`callbridge.bus.principals`), ``not_on_this_pbx``, ``internal_error``,
plus any code the handler raises with :class:`callbridge.errors.CommandError`. The models are strict
(``"priority": "99"`` is not a number). A malformed command never reaches the handler; no command can
crash the loop.

Signatures: ``HMAC-SHA256(secret, verb + "\\n" + signed_bytes)`` in hex, with the secret of the key the
command names (``key``), or the shared ``command_secret``.
MQTT 5 clients send it in the user property ``sig`` and sign the raw payload bytes. MQTT 3.1.1 clients
put it in a ``sig`` field of the body and sign the canonical JSON of the body *without* ``sig``
(keys sorted, no whitespace, UTF-8, i.e. ``json.dumps(body, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``). There is no replay protection beyond ``idempotency_key``; use TLS.

``not_on_this_pbx``: with a shared subscription (``$share/<group>/…``) only one daemon receives a
command, so it replies with that code and the client may retry. In broadcast mode (several daemons
subscribe to the same topics without a group, setting ``command_broadcast``) a daemon stays silent
on ``not_on_this_pbx`` so that the owning daemon's reply is the only one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog
from pydantic import ValidationError

from callbridge.bus import idents
from callbridge.bus.command_models import VERBS as VERBS  # re-exported: models live in command_models
from callbridge.bus.command_models import CommandBody as CommandBody
from callbridge.bus.principals import UNSIGNED, KeyEntry, Principal, Role, refusal
from callbridge.bus.topics import Topics
from callbridge.errors import CommandError

log = structlog.get_logger("callbridge.bus.commands")

MAX_COMMAND_BYTES = 64 * 1024
#: A response topic longer than this is not used (the fallback reply topic is).
MAX_RESPONSE_TOPIC = 1024


class FollowUp:
    """The execution result of an accepted command, told by the handler after its reply went out.

    The handler calls :meth:`accept` while handling (the reply then says ``accepted``), and later
    :meth:`executing` or :meth:`failed` exactly once (later calls are ignored).
    """

    __slots__ = ("_future", "accepted")

    def __init__(self) -> None:
        self.accepted = False
        self._future: asyncio.Future[tuple[str, dict[str, Any]]] | None = None

    def _fut(self) -> asyncio.Future[tuple[str, dict[str, Any]]]:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    def accept(self) -> None:
        self.accepted = True
        self._fut()

    def executing(self, result: dict[str, Any]) -> None:
        if not self._fut().done():
            self._fut().set_result(("executing", result))

    def failed(self, code: str, message: str, result: dict[str, Any] | None = None) -> None:
        if not self._fut().done():
            self._fut().set_result(("failed", {"code": code, "message": message, "result": result or {}}))

    async def wait(self, timeout_s: float) -> tuple[str, dict[str, Any]]:
        """``("executing", result)`` or ``("failed", {"code", "message", "result"})``."""
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self._fut())
        except TimeoutError:
            return "failed", {"code": "outcome_timeout", "message": f"no execution result within {timeout_s:.0f}s"}


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command, as the handler sees it."""

    verb: str
    body: CommandBody
    received_ts: float
    signed: bool = False
    follow_up: FollowUp = field(default_factory=FollowUp)
    #: who sent it, as the key says (the engine checks its hotline scope against the call)
    principal: Principal = UNSIGNED

    @property
    def scope(self) -> frozenset[str] | None:
        """Hotlines the sender may act for (None: all)."""
        return self.principal.hotlines


class CommandHandler(Protocol):
    """Implemented by the engine: authorise and execute; raise CommandError to refuse."""

    async def handle(self, cmd: Command) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class IncomingCommand:
    """What the MQTT adapter hands over: raw bytes plus the MQTT 5 properties that matter."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    topic: str
    payload: bytes
    correlation_data: bytes | None = None
    ok: bool = True
    #: set on an ``accepted`` reply: the execution result to send once it is known (:meth:`CommandProcessor.final`)
    follow_up: FollowUp | None = None
    verb: str = ""
    correlation_id: str | None = None


def sign(secret: bytes, verb: str, signed_bytes: bytes) -> str:
    return hmac.new(secret, verb.encode() + b"\n" + signed_bytes, hashlib.sha256).hexdigest()


def canonical_body(body: Mapping[str, Any]) -> bytes:
    """The bytes an MQTT 3.1.1 client signs: the body without ``sig``, keys sorted, compact."""
    return orjson.dumps({k: v for k, v in body.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


class CommandProcessor:
    """Validate → (signature) → handler → reply. Pure apart from awaiting the handler."""

    def __init__(
        self,
        handler: CommandHandler,
        topics: Topics,
        *,
        secret: bytes | None = None,
        keys: Mapping[str, KeyEntry] | None = None,
        secret_roles: tuple[Role, ...] = ("agent",),
        require_signature: bool = False,
        broadcast: bool = False,
        clock: Any = time.time,
    ) -> None:
        self.handler = handler
        self.topics = topics
        self.secret = secret
        self.keys = dict(keys or {})
        self.shared = Principal("shared", secret_roles)
        self.require_signature = require_signature
        self.broadcast = broadcast
        self.clock = clock
        self.handled = 0
        self.rejected = 0

    async def process(self, msg: IncomingCommand) -> Reply | None:
        """The reply to send (None: stay silent, see the module doc on ``not_on_this_pbx``)."""
        verb = self.topics.verb_of(msg.topic) or "?"
        body: dict[str, Any] = {}
        cmd: Command | None = None
        try:
            body, cmd = self._parse(verb, msg)
            result = await self.handler.handle(cmd)
        except CommandError as exc:
            if isinstance(exc, _WithBody):
                body = exc.body
            if exc.code == "not_on_this_pbx" and self.broadcast:
                return None
            self.rejected += 1
            details = getattr(exc, "details", None)
            log.info("command refused", verb=verb, code=exc.code, message=str(exc))
            return self._reply(msg, body, verb, {"code": exc.code, "message": str(exc), "details": details})
        except Exception as exc:  # the handler's bug must not kill the command loop
            self.rejected += 1
            log.exception("command handler failed", verb=verb)
            return self._reply(msg, body, verb, {"code": "internal_error", "message": type(exc).__name__})
        self.handled += 1
        follow_up = cmd.follow_up if cmd.follow_up.accepted else None
        return self._reply(msg, body, verb, None, result, follow_up=follow_up)

    async def final(self, first: Reply, timeout_s: float) -> Reply:
        """The execution result that follows an ``accepted`` reply (same topic and correlation)."""
        assert first.follow_up is not None
        status, data = await first.follow_up.wait(timeout_s)
        out: dict[str, Any] = {"ok": status == "executing", "verb": first.verb, "status": status, "final": True}
        if status == "executing":
            out["result"] = data
        else:
            out["error"] = {"code": data["code"], "message": data["message"]}
            out["result"] = data.get("result") or {}
        if first.correlation_id is not None:
            out["correlation_id"] = first.correlation_id
        log.info("command outcome", verb=first.verb, status=status, code=out.get("error", {}).get("code"))
        return Reply(first.topic, orjson.dumps(out, default=str), first.correlation_data, ok=bool(out["ok"]),
                     verb=first.verb, correlation_id=first.correlation_id)  # fmt: skip

    def _parse(self, verb: str, msg: IncomingCommand) -> tuple[dict[str, Any], Command]:
        if len(msg.payload) > MAX_COMMAND_BYTES:
            raise CommandError("too_large", f"command body over {MAX_COMMAND_BYTES} bytes")
        try:
            raw = orjson.loads(msg.payload)
        except orjson.JSONDecodeError as exc:
            raise CommandError("bad_json", f"body is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise CommandError("bad_json", "body must be a JSON object")
        model = VERBS.get(verb)
        if model is None:
            raise _WithBody(raw, "unknown_verb", f"unknown verb {verb!r}; known: {', '.join(VERBS)}")
        principal = self._check_signature(verb, msg, raw)
        try:
            body = model.model_validate(raw)
        except ValidationError as exc:
            err = _WithBody(raw, "invalid", f"{exc.error_count()} invalid field(s) for {verb}")
            err.details = [
                {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)
            ]
            raise err from None
        why = refusal(principal, verb, body.role, getattr(body, "agent", None))
        if why is not None:
            raise _WithBody(raw, "forbidden", why)
        return raw, Command(verb=verb, body=body, received_ts=self.clock(), signed=principal is not UNSIGNED,
                            principal=principal)  # fmt: skip

    def _check_signature(self, verb: str, msg: IncomingCommand, raw: dict[str, Any]) -> Principal:
        """The sender as the signature proves it (:data:`UNSIGNED` where unsigned commands are allowed)."""
        given = msg.user_properties.get("sig")
        signed_bytes = msg.payload
        if given is None and isinstance(raw.get("sig"), str):
            given, signed_bytes = raw["sig"], canonical_body(raw)
        if given is None or (self.secret is None and not self.keys):
            if self.require_signature:
                what = "a signature is required" if given is None else "no command keys are configured"
                raise _WithBody(raw, "unauthorised", what)
            return UNSIGNED
        key_id = msg.user_properties.get("key") or raw.get("key")
        if key_id is not None:
            entry = self.keys.get(str(key_id))
            secret = entry.secret.get_secret_value().encode() if entry is not None else None
            principal = entry.principal() if entry is not None else None
        else:
            secret, principal = self.secret, self.shared
        if secret is None or principal is None:
            raise _WithBody(raw, "bad_signature", "unknown key" if key_id is not None else "name the signing key")
        # bytes, not str: compare_digest raises TypeError for a str with non-ASCII characters (a fuzzed sig)
        offered = str(given).lower().encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(sign(secret, verb, signed_bytes).encode(), offered):
            raise _WithBody(raw, "bad_signature", "signature does not match")
        return principal

    def _reply_topic(self, msg: IncomingCommand, body: Mapping[str, Any]) -> str:
        rt = msg.response_topic
        base = self.topics.base + "/"
        if (
            rt
            and "+" not in rt
            and "#" not in rt
            and len(rt) <= MAX_RESPONSE_TOPIC
            and idents.broker_safe(rt)  # a topic the broker drops the connection for is never sent
            and (not rt.startswith(base) or rt.startswith(base + "reply/"))
        ):
            return rt
        reply_to = body.get("reply_to")
        safe = isinstance(reply_to, str) and idents.is_topic_level(reply_to)
        return self.topics.reply(reply_to if safe else None)

    def _reply(
        self,
        msg: IncomingCommand,
        body: Mapping[str, Any],
        verb: str,
        error: dict[str, Any] | None,
        result: dict[str, Any] | None = None,
        *,
        follow_up: FollowUp | None = None,
    ) -> Reply:
        status = "refused" if error is not None else "accepted" if follow_up is not None else "done"
        out: dict[str, Any] = {"ok": error is None, "verb": verb, "status": status, "final": follow_up is None}
        if error is not None:
            out["error"] = {k: v for k, v in error.items() if v is not None}
        else:
            out["result"] = result or {}
        corr = body.get("correlation_id")
        corr = corr if isinstance(corr, str) else None
        if corr is not None:
            out["correlation_id"] = corr
        payload = orjson.dumps(out, default=str)
        return Reply(self._reply_topic(msg, body), payload, msg.correlation_data, ok=error is None,
                     follow_up=follow_up, verb=verb, correlation_id=corr)  # fmt: skip


class _WithBody(CommandError):
    """A refusal raised after the body parsed, so the reply can still use reply_to/correlation_id."""

    def __init__(self, body: dict[str, Any], code: str, message: str) -> None:
        super().__init__(code, message)
        self.body = body
        self.details: list[dict[str, str]] | None = None
