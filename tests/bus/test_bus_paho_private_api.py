"""The private paho-mqtt/aiomqtt internals the publishing fast path uses are still there, with the same shape.

This is the loud failure :mod:`callbridge.bus.paho_private` promises: when a paho or aiomqtt upgrade moves
or changes one of them, these tests name it (the daemon itself would quietly fall back to aiomqtt's
public ``publish``, much slower). Checked on a real client connected to a real mosquitto.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import aiomqtt
import paho.mqtt.client as paho_mqtt
import pytest

from callbridge.bus import paho_private
from callbridge.bus.fastpath import BufferedSocket, PahoPipeline
from callbridge.testing.mosquitto import Mosquitto


def test_the_pinned_versions_are_the_installed_ones() -> None:
    """pyproject pins paho-mqtt >=2.1,<2.3 and aiomqtt >=2.5,<3: the ranges these internals were read in."""
    paho_v = tuple(int(x) for x in version("paho-mqtt").split(".")[:2])
    aiomqtt_v = tuple(int(x) for x in version("aiomqtt").split(".")[:2])
    assert (2, 1) <= paho_v < (2, 3), f"paho-mqtt {version('paho-mqtt')}: re-read paho_private.py first"
    assert (2, 5) <= aiomqtt_v < (3, 0), f"aiomqtt {version('aiomqtt')}: re-read paho_private.py first"


async def test_paho_internals_have_the_shape_the_fast_path_uses() -> None:
    client = aiomqtt.Client("127.0.0.1", 1, protocol=aiomqtt.ProtocolVersion.V5)
    inner = getattr(client, "_client", None)
    assert isinstance(inner, paho_mqtt.Client), "aiomqtt.Client._client is no longer the paho client"
    assert paho_private.missing(client) == []
    params = list(inspect.signature(paho_mqtt.Client._packet_queue).parameters)
    assert params[:5] == ["self", "command", "packet", "mid", "qos"], f"paho _packet_queue is now {params}"
    assert isinstance(inner._mid_generate(), int)
    assert inner._in_packet["command"] == 0, "paho _in_packet no longer says 0 between packets"
    assert inner._protocol == paho_mqtt.MQTTv5
    with inner._msgtime_mutex:
        assert isinstance(inner._last_bytes_received, float)
    assert isinstance(getattr(client, "_disconnected", None), asyncio.Future), "aiomqtt _disconnected is gone"


async def test_connected_the_socket_is_wrapped_and_a_puback_of_ours_is_taken(broker: Mosquitto) -> None:
    acks: list[int] = []
    arrived = asyncio.Event()

    def on_acks(ok: list[int], bad: list[tuple[int, int]]) -> None:
        acks.extend(ok)
        arrived.set()

    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        assert PahoPipeline.supported(client)
        pipe = PahoPipeline(client, on_acks)
        pipe.attach()
        assert isinstance(paho_private.paho_client(client)._sock, BufferedSocket), "paho _sock was not wrapped"

        class Row:
            seq, topic, payload, retain, kind = 7, "cb/test/private-api", b"x", False, "event"

        pipe.send([Row()])  # type: ignore[list-item]
        async with asyncio.timeout(5):
            await arrived.wait()
        assert acks == [7] and pipe.in_flight == 0
        await client.publish("cb/test/own", b"y", qos=1, timeout=5)  # aiomqtt's own PUBACK still reaches it


@pytest.mark.parametrize("name", paho_private.PAHO_ATTRIBUTES)
def test_missing_names_each_attribute(name: str) -> None:
    class Stripped:
        pass

    class Client:
        _client = Stripped()

    for other in paho_private.PAHO_ATTRIBUTES:
        if other != name:
            setattr(Client._client, other, None)
    assert paho_private.missing(Client()) == [f"paho.Client.{name}"]  # type: ignore[arg-type]
