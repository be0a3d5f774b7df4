"""The end-to-end baseline publishes exactly the messages it is given and is counted on the subscriber's
clock, as callbridge is (issue 19.1). Real mosquitto, real ``mosquitto_pub``/``mosquitto_sub``; no timing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.csub import CSubCounter
from bench.e2e_mqtt import FILTERS, run_mosquitto_pub, subscriber_rate
from callbridge.testing.mosquitto import Mosquitto, find_mosquitto

#: What the daemon's envelopes may hold: Chinese names, U+2028 and U+0085 (str.splitlines splits at
#: both), a space, an escaped newline — never a raw newline.
PAYLOADS = [
    '{"caller_name":"张伟","n":1}',
    '{"note":"a\u2028b\u0085c","n":2}',
    '{"summary":"two words \\n escaped","n":3}',
    '{"n":4}',
]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if find_mosquitto() is None or shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto and mosquitto-clients are not installed")
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        with Mosquitto(tmp_path / "broker") as b:
            yield b
    finally:
        if affinity is not None:  # the counter pins this process away from the servers' CPU
            os.sched_setaffinity(0, affinity)


def test_the_subscriber_keeps_every_payload_byte_for_byte(broker: Mosquitto, tmp_path: Path) -> None:
    source = tmp_path / "payloads.txt"
    source.write_bytes("".join(p + "\n" for p in PAYLOADS).encode())
    counter = CSubCounter(broker.port, FILTERS, tmp_path, payloads=True)
    published = run_mosquitto_pub(broker.port, 0, 0, tmp_path, source)  # its own counter
    assert published["count"] == len(PAYLOADS) and published["bytes"] == source.stat().st_size - len(PAYLOADS)
    report = counter.wait(len(PAYLOADS))
    assert report["count"] == len(PAYLOADS)  # the U+2028 / U+0085 payload is one message, not three lines
    kept = tmp_path / "kept.txt"
    assert counter.write_payloads(kept) == len(PAYLOADS)
    assert kept.read_bytes() == source.read_bytes()  # what a baseline round publishes next: the same bytes
    assert [env["n"] for _, env in counter.records()] == [1, 2, 3, 4]


def test_padded_lines_when_no_payloads_are_given(broker: Mosquitto, tmp_path: Path) -> None:
    published = run_mosquitto_pub(broker.port, 5, 100, tmp_path)
    assert published["count"] == 5 and published["bytes"] == 5 * 100
    assert published["messages_per_s"] == subscriber_rate(published) > 0
    assert published["launch_messages_per_s"] > 0


def test_the_rate_runs_from_the_first_to_the_last_message_received() -> None:
    assert subscriber_rate({"count": 10, "first": 100.0, "last": 102.0}) == 5.0
    assert subscriber_rate({"count": 1, "first": 7.0, "last": 7.0}) > 0  # one message: no division by zero
