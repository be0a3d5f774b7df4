"""Events and retained state through a real mosquitto: topics, envelopes, routing to other hotlines."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from bus_helpers import HandOver, Ping, running, settings_for, subscribed

from callbridge.bus.publisher import Publisher
from callbridge.bus.state import HotlineState
from callbridge.testing.mosquitto import Mosquitto

pytestmark = pytest.mark.mosquitto


async def test_event_arrives_on_hotline_and_call_topics_as_a_cloudevent(broker: Mosquitto, tmp_path: Path) -> None:
    ts = 1_790_000_000.25
    async with subscribed(broker, "callbridge/lab/#") as (_, seen), running(
        Publisher(settings_for(broker, tmp_path))
    ) as pub:
        await pub.publish_events([Ping(ts=ts, call_id="1700000000.42", hotline="12345", n=7)])
        await seen.wait_until(lambda c: len(c.envelopes("callbridge/lab/")) > 1)
        async with asyncio.timeout(5):
            await pub.wait_drained()
    by_topic = dict(seen.envelopes())
    assert set(by_topic) == {"callbridge/lab/events/12345/test/ping", "callbridge/lab/calls/1700000000.42"}
    env = by_topic["callbridge/lab/events/12345/test/ping"]
    assert env == by_topic["callbridge/lab/calls/1700000000.42"]  # same bytes, same id: de-duplicable
    assert env["specversion"] == "1.0"
    assert env["type"] == "org.callbridge.test.ping"
    assert env["source"] == "callbridge/lab"
    assert env["subject"] == env["callid"] == "1700000000.42"
    assert env["hotline"] == "12345"
    assert env["time"] == "2026-09-21T14:13:20.250Z"
    assert env["datacontenttype"] == "application/json"
    assert env["data"] == {"call_id": "1700000000.42", "hotline": "12345", "n": 7}
    assert env["seq"] == 1
    assert len(env["id"]) == 36
    # the daemon's status is retained "online" while connected
    assert ("callbridge/lab/status", b"online") in [(t, p) for t, p, _ in seen.messages]


async def test_transfer_reaches_the_destination_hotline_subscriber_before_anything_else(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async with subscribed(broker, "callbridge/lab/events/110/#") as (_, police), running(
        Publisher(settings_for(broker, tmp_path))
    ) as pub:
        await pub.publish_events(
            [
                Ping(ts=time.time(), call_id="c1", hotline="12345", n=1),  # not for 110
                HandOver(ts=time.time(), call_id="c1", hotline="12345", to_hotline="110", caller_num="13800138000"),
            ]
        )
        await police.wait_until(lambda c: len(c.messages) >= 1)
        async with asyncio.timeout(5):
            await pub.wait_drained()
        await asyncio.sleep(0.1)  # anything else addressed to 110 would have arrived by now
    [(topic, env)] = police.envelopes()
    assert topic == "callbridge/lab/events/110/test/handover"
    assert env["hotline"] == "12345"  # the sending hotline; 110 sees it because it is the destination
    assert env["data"]["caller_num"] == "13800138000"


async def test_event_without_hotline_or_call_uses_placeholder_level(broker: Mosquitto, tmp_path: Path) -> None:
    async with subscribed(broker, "callbridge/lab/events/#") as (_, seen), running(
        Publisher(settings_for(broker, tmp_path))
    ) as pub:
        await pub.publish_events([Ping(ts=time.time(), n=3)])
        await seen.wait_until(lambda c: len(c.messages) >= 1)
    [(topic, env)] = seen.envelopes()
    assert topic == "callbridge/lab/events/_/test/ping"
    assert "subject" not in env and "callid" not in env


async def test_retained_state_is_seen_by_a_late_subscriber(broker: Mosquitto, tmp_path: Path) -> None:
    async with running(Publisher(settings_for(broker, tmp_path))) as pub:
        await pub.set_state("hotlines/110", HotlineState(hotline="110", waiting=1, ts=1.0))
        await pub.set_state("hotlines/110", HotlineState(hotline="110", waiting=3, agents_free=2, ts=2.0))
        await pub.set_state("mode", {"mode": "night", "since": 5.0})
        async with asyncio.timeout(5):
            await pub.wait_drained()
        async with subscribed(broker, "callbridge/lab/state/#", "callbridge/lab/status") as (_, late):
            await late.wait_until(lambda c: len(c.messages) >= 3)
    retained = {t: p for t, p, r in late.messages if r}
    assert retained["callbridge/lab/status"] == b"online"
    assert b'"waiting":3' in retained["callbridge/lab/state/hotlines/110"]
    assert retained["callbridge/lab/state/mode"] == b'{"mode":"night","since":5.0}'


async def test_graceful_stop_leaves_status_offline(broker: Mosquitto, tmp_path: Path) -> None:
    async with running(Publisher(settings_for(broker, tmp_path))):
        pass
    async with subscribed(broker, "callbridge/lab/status") as (_, seen):
        await seen.wait_until(lambda c: len(c.messages) >= 1)
    assert seen.messages == [("callbridge/lab/status", b"offline", True)]


async def test_username_and_password_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret-pass\n")
    with Mosquitto(tmp_path / "auth-broker", users={"callbridge": "s3cret-pass", "desk": "desk-pass"}) as broker:
        async with subscribed(broker, "callbridge/lab/events/#", username="desk", password="desk-pass") as (_, seen):
            settings = settings_for(broker, tmp_path, username="callbridge", password_file=secret)
            async with running(Publisher(settings)) as pub:
                await pub.publish_events([Ping(ts=time.time(), hotline="12345")])
                await seen.wait_until(lambda c: len(c.messages) >= 1)
            # a wrong password is refused, logged and retried forever without crashing
            bad = Publisher(settings_for(broker, tmp_path / "bad", username="callbridge", password="nope"))
            async with running(bad, connect=False):
                async with asyncio.timeout(10):
                    while bad.attempts < 3:  # noqa: ASYNC110 - polling a counter the publisher bumps
                        await asyncio.sleep(0.02)
                assert not bad.connected and bad.connections == 0
                assert bad.last_error


@pytest.fixture
def server_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


async def test_tls_with_a_private_ca(tmp_path: Path, server_cert: tuple[Path, Path]) -> None:
    cert, key = server_cert
    tls_conf = f"cafile {cert}\ncertfile {cert}\nkeyfile {key}"
    with Mosquitto(tmp_path / "tls-broker", extra_config=tls_conf) as broker:
        pub = Publisher(settings_for(broker, tmp_path, tls=True, tls_ca_file=cert))
        async with running(pub):
            await pub.publish_events([Ping(ts=time.time(), hotline="119")])
            async with asyncio.timeout(5):
                await pub.wait_drained()
        # the same broker refuses a client that does not trust its certificate
        untrusting = Publisher(settings_for(broker, tmp_path / "untrusting", tls=True))
        async with running(untrusting, connect=False):
            async with asyncio.timeout(10):
                while untrusting.attempts < 2:  # noqa: ASYNC110 - polling a counter the publisher bumps
                    await asyncio.sleep(0.02)
            assert untrusting.connections == 0 and "CERTIFICATE" in (untrusting.last_error or "").upper()
