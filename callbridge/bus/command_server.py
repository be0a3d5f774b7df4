"""The MQTT side of commands: subscribe, hand raw messages to :class:`CommandProcessor`, send replies.

It has its own MQTT connection (client id ``<client_id>-cmd``) so a flood of outgoing events never
delays a command and each side reconnects on its own. Commands are handled one at a time in arrival
order (two commands for the same call must not race; the engine's handler returns quickly), and
replies are sent at QoS 1 directly (not through the outbox: a reply is only useful to a client that
is waiting now). The execution result of an ``accepted`` command (see :mod:`callbridge.bus.commands`) is
awaited in its own task, so the next command is not held up; it goes to the same reply topic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbridge.bus.commands import CommandHandler, CommandProcessor, IncomingCommand, Reply
from callbridge.bus.config import BusSettings
from callbridge.bus.subscription import Subscription
from callbridge.bus.topics import Topics

log = structlog.get_logger("callbridge.bus.commands")


def incoming_from(message: aiomqtt.Message) -> IncomingCommand:
    """Adapter: aiomqtt message → :class:`IncomingCommand` (MQTT 5 properties when present)."""
    props: Any = message.properties
    payload = message.payload if isinstance(message.payload, bytes | bytearray) else str(message.payload).encode()
    response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
    correlation = getattr(props, "CorrelationData", None) if props is not None else None
    user_props: dict[str, str] = {}
    for key, value in (getattr(props, "UserProperty", None) or []) if props is not None else []:
        user_props[str(key)] = str(value)
    return IncomingCommand(
        topic=message.topic.value,
        payload=bytes(payload),
        response_topic=response_topic or None,
        correlation_data=bytes(correlation) if correlation is not None else None,
        user_properties=user_props,
    )


class CommandServer:
    """Consumes ``callbridge/<site>/cmd/+`` (or its ``$share`` form) and replies."""

    def __init__(
        self,
        settings: BusSettings,
        handler: CommandHandler,
        *,
        topics: Topics | None = None,
        broadcast: bool | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics or Topics(settings.site)
        self.processor = CommandProcessor(
            handler,
            self.topics,
            secret=settings.resolved_command_secret(),
            keys=settings.resolved_command_keys(),
            secret_roles=settings.command_secret_roles,
            require_signature=settings.signatures_required(),
            broadcast=settings.command_broadcast if broadcast is None else broadcast,
        )
        self._follow_ups: set[asyncio.Task[None]] = set()
        self._link = Subscription(settings, client_id=settings.resolved_client_id() + "-cmd", role="commands",
                                  topics=[self.topics.command_filter(settings.command_shared_group)],
                                  handle=self._handle, on_failure=self._connection_failed)  # fmt: skip

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def attempts(self) -> int:
        return self._link.attempts

    async def wait_subscribed(self) -> None:
        """Until the command subscription is active (wrap in ``asyncio.timeout``)."""
        await self._link.wait_subscribed()

    def stop(self) -> None:
        self._link.stop()

    async def run(self) -> None:
        """Connect, subscribe, serve, reconnect — until :meth:`stop` (or cancellation)."""
        await self._link.run()

    @staticmethod
    def _connection_failed(error: str) -> None:
        log.warning("mqtt command connection failed or lost", error=error)

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        reply = await self.processor.process(incoming_from(message))
        if reply is not None:
            await self._send(client, reply)
            if reply.follow_up is not None:
                task = asyncio.create_task(self._send_final(client, reply))
                self._follow_ups.add(task)
                task.add_done_callback(self._follow_ups.discard)

    async def _send_final(self, client: aiomqtt.Client, first: Reply) -> None:
        final = await self.processor.final(first, self.settings.command_outcome_timeout_s)
        try:
            await self._send(client, final)
        except aiomqtt.MqttError as exc:  # the connection is gone: the requester asks ``status``
            log.warning("command outcome not sent", verb=final.verb, error=str(exc))

    async def _send(self, client: aiomqtt.Client, reply: Reply) -> None:
        props = None
        if reply.correlation_data is not None and self.settings.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = reply.correlation_data
        await client.publish(reply.topic, reply.payload, qos=1, properties=props)
