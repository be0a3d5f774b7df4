"""Two centres (issue 21.2): two real mosquitto brokers joined by config/two-centres' bridge on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from callbridge.testing.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[2]
BRIDGE = REPO / "config" / "two-centres" / "mosquitto-bridge-110.conf"

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto clients not installed")


def _sub(port: int, topic: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", topic, "-q", "1", "-C", str(count), "-W", "20"],
                            stdout=subprocess.PIPE)  # fmt: skip


def _pub(port: int, topic: str, msg: str) -> None:
    subprocess.run(["mosquitto_pub", "-p", str(port), "-t", topic, "-q", "1", "-m", msg], check=True, timeout=10)


def test_each_centres_events_reach_the_other_broker_and_its_commands_do_not(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "a") as a:
        bridge = BRIDGE.read_text(encoding="utf-8").replace("@PEER@", f"127.0.0.1:{a.port}")
        with Mosquitto(tmp_path / "b", extra_config=bridge) as b:
            at_b = _sub(b.port, "callbridge/#", 1)
            at_a = _sub(a.port, "callbridge/c110/#", 1)
            time.sleep(2.0)  # the bridge connects
            _pub(a.port, "callbridge/c12345/cmd/noise", "not bridged")
            _pub(a.port, "callbridge/c12345/events/110/transfer/requested", "to-110")
            _pub(b.port, "callbridge/c110/events/12345/handover/feedback", "to-12345")
            out_b, _ = at_b.communicate(timeout=25)
            out_a, _ = at_a.communicate(timeout=25)
            assert out_b.decode().strip() == "to-110"
            assert out_a.decode().strip() == "to-12345"
