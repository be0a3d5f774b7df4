"""Client-side kit for call-center software (and the demo): send commands, watch events.

Kept in ``bus/`` because ``bus/`` is the only package that imports aiomqtt. ``CommandClient`` uses the part
of the command contract every broker supports — the body's ``reply_to`` and ``correlation_id`` (the
MQTT 3.1.1 fallback; the embedded amqtt broker has no MQTT 5) — so the same code works against the
embedded broker and against mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

import aiomqtt
import orjson

from callbridge.bus.commands import canonical_body, sign
from callbridge.bus.topics import Topics
from callbridge.errors import BrokerError, CommandError


class CommandClient:
    """Publishes ``callbridge/<site>/cmd/<verb>`` and awaits the reply matched by correlation id."""

    def __init__(self, host: str, port: int, protocol: str, site: str, client_prefix: str = "console", *,
                 key: str | None = None, secret: bytes | None = None) -> None:  # fmt: skip
        """``key``/``secret``: sign every command with this command key (see bus/principals.py)."""
        self.topics = Topics(site)
        self._key, self._secret = key, secret
        self.reply_to = f"{client_prefix}-{secrets.token_hex(3)}"
        self._client = aiomqtt.Client(host, port, identifier=self.reply_to, timeout=10,
                                      protocol=aiomqtt.ProtocolVersion.V5 if protocol == "5"
                                      else aiomqtt.ProtocolVersion.V311)  # fmt: skip
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._seq = 0

    async def start(self) -> None:
        await self._client.__aenter__()
        await self._client.subscribe(self.topics.reply(self.reply_to), qos=1)
        self._reader = asyncio.create_task(self._read(), name="command-client-replies")

    async def _read(self) -> None:
        async for message in self._client.messages:
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                reply = orjson.loads(bytes(message.payload))
                future = self._pending.pop(str(reply.get("correlation_id")), None)
                if future is not None and not future.done():
                    future.set_result(reply)

    async def send(self, verb: str, timeout: float = 10.0, **body: Any) -> dict[str, Any]:  # noqa: ASYNC109
        """Publish ``callbridge/<site>/cmd/<verb>`` and wait for the reply; raise ``CommandError`` on refusal."""
        self._seq += 1
        corr = f"{self.reply_to}-{self._seq}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[corr] = future
        full = {**body, "reply_to": self.reply_to, "correlation_id": corr}
        if self._secret is not None:
            if self._key is not None:
                full["key"] = self._key
            full["sig"] = sign(self._secret, verb, canonical_body(full))
        payload = orjson.dumps(full)
        await self._client.publish(self.topics.command(verb), payload, qos=1)
        try:
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise CommandError("no_reply", f"no reply to {verb} within {timeout:.0f}s") from None
        finally:
            self._pending.pop(corr, None)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise CommandError(str(error.get("code", "refused")), str(error.get("message", "")))
        result: dict[str, Any] = reply.get("result") or {}
        return result

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await self._client.__aexit__(None, None, None)


async def watch_events(host: str, port: int, protocol: str, topic_filter: str,
                       on_message: Callable[[str, bytes], None], *, ready: asyncio.Event | None = None,
                       client_prefix: str = "watch") -> None:
    """Subscribe at QoS 1 and hand every message (topic, payload) to ``on_message`` until cancelled."""
    client = aiomqtt.Client(host, port, identifier=f"{client_prefix}-{secrets.token_hex(3)}", timeout=10,
                            protocol=aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311)
    try:
        async with client:
            await client.subscribe(topic_filter, qos=1)
            if ready is not None:
                ready.set()
            async for message in client.messages:
                on_message(message.topic.value, bytes(message.payload))
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"event watcher on {host}:{port}: {exc}") from exc
