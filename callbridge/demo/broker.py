"""An embedded MQTT broker for the demo (amqtt, in-process, loopback only).

amqtt's defaults bind 0.0.0.0 and load plugins; the demo gives it a lean configuration on 127.0.0.1
with anonymous access (loopback only, demo data only). amqtt speaks MQTT 3.1.1, so clients of the
embedded broker use the 3.1.1 fallback of the command contract; production uses mosquitto or a
clustered broker with MQTT 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from amqtt.broker import Broker

from callbridge.testing.ports import free_port


class EmbeddedBroker:
    """Start/stop an amqtt broker inside the running event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        # amqtt logs every connection at INFO; the demo narrates on its own.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 64}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        # Broker() must be created inside a running loop (it grabs the loop at construction).
        self._broker = Broker(config)
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._broker.shutdown(), 5)
            self._broker = None
