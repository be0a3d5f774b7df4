"""The counting subscriber of every MQTT comparison: ``mosquitto_sub -q 1`` (C), in its own process.

Both sides of a comparison are counted by the same C subscriber: a Python subscriber (paho) capped the
``mosquitto_pub`` baseline at about 23k msg/s where ``mosquitto_sub`` takes 38–41k from the same
chunks, which flattered whatever was compared with it. ``mosquitto_sub`` writes one line per message
(``%U %l %t``: receive time with nanoseconds, payload length, topic) to a file; the file is read only
after the publisher is done, so counting costs the measured process nothing while it runs. It is
pinned beside the broker (:func:`bench.common.keep_apart`), never on the measured process's core.

Subscribed is proven by a probe: a QoS 1 message on ``<first filter>/probe`` is published until the
subscriber has written it (``mosquitto_sub`` says nothing when its SUBACK arrives); probe lines are not
counted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import keep_apart

PROBE = "probe"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not installed (Debian: mosquitto-clients)")
    return found


class CSubCounter:
    """``mosquitto_sub -q 1`` on ``filters`` writing one line per message into ``workdir``."""

    def __init__(self, port: int, filters: list[str], workdir: Path, *, idle: float = 5.0,
                 payloads: bool = False) -> None:
        self.port = port
        self.idle = idle
        self.path = workdir / f"csub-{time.monotonic_ns()}.txt"
        base = filters[0].removesuffix("#").rstrip("/")
        self.probe_topic = f"{base}/{PROBE}"
        args = [binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-R",
                "-i", f"bench-csub-{time.monotonic_ns()}", "-F", "%U %l %t %p" if payloads else "%U %l %t"]  # fmt: skip
        for f in filters:
            args += ["-t", f]
        self._out = self.path.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.DEVNULL)
        keep_apart(self.proc.pid)
        self._wait_subscribed()

    def _wait_subscribed(self, timeout: float = 15.0) -> None:
        pub = binary("mosquitto_pub")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            subprocess.run([pub, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", "-t", self.probe_topic,
                            "-m", "p"], check=False, timeout=10)  # fmt: skip
            for _ in range(20):
                if self.path.stat().st_size:
                    return
                time.sleep(0.01)
        self.kill()
        raise RuntimeError("mosquitto_sub did not subscribe")

    def lines(self) -> int:
        """Lines written so far (probes included)."""
        with self.path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def wait(self, expected: int) -> dict[str, Any]:
        """Until ``expected`` messages (probes aside) arrived, or none for ``idle`` s; then the report:
        ``count``, ``bytes``, ``first``/``last`` (receive times, Unix seconds), ``topics`` (distinct)."""
        last_size, last_change = -1, time.monotonic()
        while True:
            size = self.path.stat().st_size
            if size != last_size:
                last_size, last_change = size, time.monotonic()
                if self.lines() >= expected + 1 and self._report()["count"] >= expected:
                    break
            elif time.monotonic() - last_change > self.idle:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # a duplicate arriving right after the last one is counted too
        self.kill()
        return {**self._report(), "expected": expected}

    def _lines(self) -> list[bytes]:
        # split on b"\n" only: str.splitlines would also split a payload at U+2028 or U+0085
        return self.path.read_bytes().split(b"\n")

    def _report(self) -> dict[str, Any]:
        count = size = 0
        first = last = 0.0
        probe = self.probe_topic.encode()
        for line in self._lines():
            parts = line.split(b" ", 3)
            if len(parts) < 3 or parts[2] == probe:
                continue
            t = float(parts[0])
            first = t if not count else first
            last = max(last, t)
            count += 1
            size += int(parts[1])
        return {"count": count, "bytes": size, "first": first, "last": last}

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(topic, decoded envelope) of every message (``payloads=True``), probes aside, in arrival order."""
        return [(topic.decode(), json.loads(payload)) for topic, payload in self._messages()]

    def write_payloads(self, dest: Path) -> int:
        """The payload of every message (``payloads=True``), one per line in arrival order, into ``dest``
        (``mosquitto_pub -l`` input: a JSON envelope holds no raw newline); returns how many."""
        payloads = [payload for _, payload in self._messages()]
        dest.write_bytes(b"".join(p + b"\n" for p in payloads))
        return len(payloads)

    def _messages(self) -> list[tuple[bytes, bytes]]:
        probe = self.probe_topic.encode()
        out = []
        for line in self._lines():
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[2] != probe:
                out.append((parts[2], parts[3]))
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()
