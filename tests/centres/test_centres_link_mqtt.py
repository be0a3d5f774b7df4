"""Two centres (issue 21): the settings of the link and its MQTT subscriber (callbridge/bus/peer.py) on a real
mosquitto — validated, typed events delivered once; malformed ones refused and logged, delivery goes on; a
persistent session keeps what arrives while the daemon is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest
from structlog.testing import capture_logs

from callbridge.bus.config import BusSettings
from callbridge.bus.envelope import build
from callbridge.bus.peer import PeerSubscriber
from callbridge.centres.link import peer_filters
from callbridge.domain import DomainEvent
from callbridge.engine.events import TransferFailed, TransferRequested
from callbridge.errors import ConfigError
from callbridge.settings import load_settings
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto

TOPIC = "callbridge/c12345/events/110/transfer/requested"


# --- settings ---------------------------------------------------------------------------------------


def test_the_centres_settings_default_and_are_checked_where_they_were_written(tmp_path: Path) -> None:
    f = tmp_path / "callbridge.yaml"
    f.write_text("site_id: c110\ncentres:\n  peer_site: c12345\n", encoding="utf-8")
    s = load_settings(f, env={})
    assert (s.centres.peer_site, s.centres.window_s, s.mqtt.site) == ("c12345", 120.0, "c110")
    assert load_settings(f, env={"CALLBRIDGE_CENTRES__WINDOW_S": "45"}).centres.window_s == 45.0
    assert load_settings(None, env={}).centres.peer_site is None  # one centre: no link
    for bad, field in (("  peer_site: c12345/#\n", "centres.peer_site"), ("  peer_site: c110\n", "peer_site"),
                       ("  window_s: 0\n", "centres.window_s"), ("  peer: c12345\n", "centres.peer")):  # fmt: skip
        f.write_text("site_id: c110\ncentres:\n" + bad, encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_settings(f, env={})
        assert field in str(err.value), (bad, str(err.value))


def test_the_example_settings_of_the_two_centres_name_each_other() -> None:
    root = Path(__file__).resolve().parents[2] / "config" / "two-centres"
    a, b = (load_settings(root / f"callbridge-{n}.yaml", env={}) for n in ("12345", "110"))
    assert (a.mqtt.site, a.centres.peer_site) == (b.centres.peer_site, b.mqtt.site) == ("c12345", "c110")
    assert a.dialplan.path.is_dir() and b.dialplan.path.is_dir()


# --- the subscriber on a real broker ------------------------------------------------------------------


def _requested(xfer: str) -> TransferRequested:
    return TransferRequested(ts=1000.0, call_id="1790000000.1", hotline="12345", transfer_id=xfer,
                             from_hotline="12345", to_hotline="110", caller_num="13800138000", agent="agent1001",
                             category="police", ticket="GD-0001")  # fmt: skip


@contextlib.asynccontextmanager
async def _link(broker: Mosquitto, got: list[DomainEvent]) -> AsyncIterator[PeerSubscriber]:
    settings = BusSettings(host=broker.host, port=broker.port, site="c110", reconnect_min_s=0.05, reconnect_max_s=0.2)
    sub = PeerSubscriber(settings, peer_site="c12345", filters=peer_filters("callbridge", "c12345", frozenset({"110"})),
                         deliver=got.extend)  # fmt: skip
    task = asyncio.create_task(sub.link.run())
    try:
        async with asyncio.timeout(10):
            await sub.link.wait_subscribed()
        yield sub
    finally:
        sub.link.stop()
        async with asyncio.timeout(5):
            await task


@pytest.fixture
def broker(tmp_path: Path) -> object:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    with Mosquitto(tmp_path / "broker") as b:
        yield b


async def _until(what: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not what():  # noqa: ASYNC110  # a condition of plain state, polled
            await asyncio.sleep(0.02)


@pytest.mark.mosquitto
async def test_valid_peer_events_are_delivered_once_and_malformed_ones_refused_and_logged(broker: Mosquitto) -> None:
    got: list[DomainEvent] = []
    env = build(_requested("a1b2c3d4e5f6"), site="c12345", seq=1)
    with capture_logs() as logs:
        async with _link(broker, got) as sub, aiomqtt.Client(broker.host, broker.port) as pub:
            await pub.publish(TOPIC, b"{not json", qos=1)
            await pub.publish(TOPIC, build(_requested("b1"), site="c999", seq=2).payload, qos=1)  # not the peer
            await pub.publish(TOPIC, env.payload, qos=1)
            await pub.publish(TOPIC, env.payload, qos=1)  # a redelivery
            failed = TransferFailed(ts=1001.0, call_id="1790000000.1", hotline="12345", transfer_id="a1b2c3d4e5f6",
                                    from_hotline="12345", to_hotline="110", reason="unreachable")  # fmt: skip
            failed_env = build(failed, site="c12345", seq=3)
            await pub.publish("callbridge/c12345/events/110/transfer/failed", failed_env.payload, qos=1)
            await pub.publish("callbridge/c12345/events/12345/transfer/requested", env.payload, qos=1)  # not ours
            await _until(lambda: len(got) == 2)
            await asyncio.sleep(0.3)
    assert [(type(e), getattr(e, "transfer_id", "")) for e in got] == [
        (TransferRequested, "a1b2c3d4e5f6"), (TransferFailed, "a1b2c3d4e5f6")]  # fmt: skip
    assert (sub.taken, sub.refused, sub.duplicates) == (2, 2, 1)
    reasons = [e["reason"] for e in logs if e["event"] == "peer event refused"]
    assert len(reasons) == 2 and "not the peer" in reasons[1]


@pytest.mark.mosquitto
async def test_a_fault_of_the_consumer_does_not_end_the_link(broker: Mosquitto) -> None:
    got: list[DomainEvent] = []

    def deliver(events: object) -> None:
        got.extend(events)  # type: ignore[call-overload]
        if len(got) == 1:
            raise RuntimeError("consumer bug")

    async with _link(broker, []) as sub, aiomqtt.Client(broker.host, broker.port) as pub:
        sub.deliver = deliver
        for xfer in ("x1", "x2"):
            await pub.publish(TOPIC, build(_requested(xfer), site="c12345", seq=1).payload, qos=1)
        await _until(lambda: len(got) == 2)
    assert sub.taken == 2


@pytest.mark.mosquitto
async def test_the_persistent_session_keeps_what_arrived_while_the_daemon_was_away(broker: Mosquitto) -> None:
    got: list[DomainEvent] = []
    async with _link(broker, got):
        pass  # subscribed once, then away
    async with aiomqtt.Client(broker.host, broker.port) as pub:
        await pub.publish(TOPIC, build(_requested("while-away"), site="c12345", seq=1).payload, qos=1)
    async with _link(broker, got):
        await _until(lambda: len(got) == 1)
    assert getattr(got[0], "transfer_id", "") == "while-away"
