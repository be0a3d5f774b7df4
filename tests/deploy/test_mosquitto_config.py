"""``config/mosquitto/`` as shipped starts on mosquitto 2 and its ACL does what it says, checked with real clients.

The config is patched only where a test must: one loopback listener on a free port (the TLS listener needs
certificates this machine does not have), and the password, ACL and persistence paths in a temp folder.
Passwords are generated with ``mosquitto_passwd -b``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from callbridge.testing.mosquitto import find_mosquitto
from callbridge.testing.ports import free_port
from tests.deploy.dockerfile import REPO

CONFIG_DIR = REPO / "config" / "mosquitto"
USERS = ("callbridge", "desk12345", "dispatch110", "supervisor", "wallboard")
SITE = "city-a"

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]


def patched_config(workdir: Path, port: int) -> str:
    """The shipped mosquitto.conf with its listeners on one loopback port and its files in *workdir*."""
    out: list[str] = []
    in_tls_listener = False
    for line in (CONFIG_DIR / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        word = line.split(" ", 1)[0]
        if word == "listener":
            in_tls_listener = not line.rstrip().endswith("127.0.0.1")  # keep only the local plain listener
            if not in_tls_listener:
                out.append(f"listener {port} 127.0.0.1")
            continue
        if in_tls_listener and word in ("protocol", "cafile", "certfile", "keyfile", "require_certificate"):
            continue
        # only the folders move: whatever else the line holds reaches mosquitto as shipped
        out.append(line.replace("/etc/mosquitto/", f"{workdir}/").replace("/var/lib/mosquitto/", f"{workdir}/"))
    if os.geteuid() == 0:
        out.append("user root")  # otherwise mosquitto drops to 'mosquitto', who cannot read the temp folder
    out.append(f"log_dest file {workdir / 'mosquitto.log'}")
    return "\n".join(out) + "\n"


@dataclass
class Broker:
    port: int
    passwords: dict[str, str]
    log: Path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    binary, passwd = find_mosquitto(), shutil.which("mosquitto_passwd")
    if binary is None or passwd is None:
        pytest.skip("mosquitto / mosquitto_passwd not installed (bash scripts/setup installs them)")
    workdir = tmp_path_factory.mktemp("mosquitto")
    passwords = {user: secrets.token_hex(8) for user in USERS}
    password_file = workdir / "callbridge.passwd"
    for i, (user, password) in enumerate(passwords.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run([passwd, *create, "-b", str(password_file), user, password], check=True,
                       capture_output=True, timeout=30)
    shutil.copy(CONFIG_DIR / "callbridge.acl", workdir / "callbridge.acl")
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(patched_config(workdir, port), encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    try:
        while True:
            if proc.poll() is not None:
                log = workdir / "mosquitto.log"
                said = (proc.stderr.read() if proc.stderr else "") + (log.read_text() if log.exists() else "")
                pytest.fail(f"mosquitto refused config/mosquitto/mosquitto.conf: {said}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.05)
        yield Broker(port, passwords, workdir / "mosquitto.log")
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Client:
    """A paho client that records what it receives and how the broker acknowledged its publishes."""

    client: mqtt.Client
    received: list[tuple[str, bytes]] = field(default_factory=list)
    acks: dict[int, int] = field(default_factory=dict)  # mid -> PUBACK reason code
    connack: int | None = None
    disconnected: bool = False
    got: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, predicate: object, timeout: float = 5.0) -> bool:
        with self.got:
            return self.got.wait_for(predicate, timeout)  # type: ignore[arg-type]


def connect(broker: Broker, user: str | None, *, protocol: int = mqtt.MQTTv5, password: str | None = None) -> Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{secrets.token_hex(3)}", protocol=protocol)
    c = Client(client)
    if user is not None:
        client.username_pw_set(user, password if password is not None else broker.passwords[user])

    def on_connect(_cl: object, _ud: object, _flags: object, reason: object, _props: object) -> None:
        with c.got:
            c.connack = int(getattr(reason, "value", reason))  # type: ignore[call-overload]
            c.got.notify_all()

    def on_message(_cl: object, _ud: object, msg: mqtt.MQTTMessage) -> None:
        with c.got:
            c.received.append((msg.topic, msg.payload))
            c.got.notify_all()

    def on_publish(_cl: object, _ud: object, mid: int, reason: object, _props: object) -> None:
        with c.got:
            c.acks[mid] = int(getattr(reason, "value", reason))  # type: ignore[call-overload]
            c.got.notify_all()

    def on_disconnect(_cl: object, _ud: object, _flags: object, _reason: object, _props: object) -> None:
        with c.got:
            c.disconnected = True
            c.got.notify_all()

    client.on_connect, client.on_message, client.on_publish = on_connect, on_message, on_publish
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    c.wait(lambda: c.connack is not None)
    return c


def close(*clients: Client) -> None:
    for c in clients:
        c.client.disconnect()
        c.client.loop_stop()


def subscribe(c: Client, topic: str) -> None:
    done = threading.Event()
    c.client.on_subscribe = lambda *_a: done.set()
    c.client.subscribe(topic, qos=1)
    assert done.wait(5), f"no SUBACK for {topic}"


def test_shipped_config_has_no_trailing_comment_mosquitto_would_read_as_a_value() -> None:
    for line in (CONFIG_DIR / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        assert line.startswith("#") or "#" not in line, f"mosquitto 2 reads a trailing comment as part of: {line}"


def test_every_user_of_the_acl_logs_in_and_anonymous_is_refused(broker: Broker) -> None:
    acl_users = re.findall(r"^user (\S+)", (CONFIG_DIR / "callbridge.acl").read_text(encoding="utf-8"), re.M)
    assert set(acl_users) == set(USERS)
    clients = [connect(broker, user) for user in USERS]
    try:
        assert [c.connack for c in clients] == [0] * len(USERS)
    finally:
        close(*clients)
    anonymous = connect(broker, None)
    wrong = connect(broker, "wallboard", password="not-" + broker.passwords["wallboard"])
    try:
        assert anonymous.connack not in (None, 0), "an anonymous client was let in"
        assert wrong.connack not in (None, 0), "a wrong password was let in"
    finally:
        close(anonymous, wrong)


def test_wallboard_reads_status_and_state(broker: Broker) -> None:
    daemon = connect(broker, "callbridge")
    daemon.client.publish(f"callbridge/{SITE}/status", b"online", qos=1, retain=True).wait_for_publish(5)
    daemon.client.publish(f"callbridge/{SITE}/state/hotlines/12345", b"{}", qos=1, retain=True).wait_for_publish(5)
    wallboard = connect(broker, "wallboard")
    try:
        subscribe(wallboard, f"callbridge/{SITE}/status")
        subscribe(wallboard, f"callbridge/{SITE}/state/#")
        assert wallboard.wait(lambda: len(wallboard.received) >= 2), wallboard.received
        assert (f"callbridge/{SITE}/status", b"online") in wallboard.received
    finally:
        close(daemon, wallboard)


def test_agent_cannot_switch_modes_but_a_supervisor_can(broker: Broker) -> None:
    topic = f"callbridge/{SITE}/cmd/set_mode"
    daemon = connect(broker, "callbridge")  # the daemon reads every command
    subscribe(daemon, f"callbridge/{SITE}/cmd/#")
    desk = connect(broker, "desk12345")
    supervisor = connect(broker, "supervisor")
    desk5 = connect(broker, "desk12345")
    desk311 = connect(broker, "desk12345", protocol=mqtt.MQTTv311)
    try:
        # what each may send arrives: the agent's status request, the supervisor's mode switch
        desk.client.publish(f"callbridge/{SITE}/cmd/status", b"{}", qos=1).wait_for_publish(5)
        supervisor.client.publish(topic, b'{"mode": "surge"}', qos=1).wait_for_publish(5)
        assert daemon.wait(lambda: len(daemon.received) == 2), daemon.received
        # MQTT 5: the broker answers "not authorised" (0x87) in the PUBACK (mosquitto 2.0 then drops the client)
        info = desk5.client.publish(topic, b'{"mode": "emergency"}', qos=1)
        assert desk5.wait(lambda: info.mid in desk5.acks or desk5.disconnected)
        assert desk5.acks.get(info.mid) == 0x87, desk5.acks
        # MQTT 3.1.1 has no reason codes: the switch must simply never reach the daemon
        info = desk311.client.publish(topic, b'{"mode": "normal"}', qos=1)
        assert desk311.wait(lambda: info.mid in desk311.acks or desk311.disconnected)
        supervisor.client.publish(topic, b'{"mode": "after"}', qos=1).wait_for_publish(5)
        assert daemon.wait(lambda: len(daemon.received) >= 3), daemon.received
        assert daemon.received == [
            (f"callbridge/{SITE}/cmd/status", b"{}"), (topic, b'{"mode": "surge"}'), (topic, b'{"mode": "after"}'),
        ]
    finally:
        close(daemon, desk, supervisor, desk5, desk311)
