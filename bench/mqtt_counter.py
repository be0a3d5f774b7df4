"""A counting MQTT subscriber in its own process (so counting does not take the publisher's core).

``python -m bench.mqtt_counter PORT FILTER [FILTER…]`` subscribes at QoS 1, prints ``ready`` once
subscribed, then reads the expected message count from stdin (one line, whenever the publisher knows
it). It prints one JSON line when that many messages arrived — or, when no message arrived for
``--idle`` seconds after the count is known, with the count so far (lost messages are then visible).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("filters", nargs="+")
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    state: dict[str, Any] = {"count": 0, "bytes": 0, "first": 0.0, "last": 0.0}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        with lock:
            if not state["count"]:
                state["first"] = now
            state["count"] += 1
            state["bytes"] += len(msg.payload)
            state["last"] = now

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
        client.subscribe([(f, 1) for f in args.filters])

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-counter-{time.monotonic_ns()}")
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    if not subscribed.wait(15):
        print(json.dumps({"error": "not subscribed"}), flush=True)
        return 1
    print("ready", flush=True)
    expected = int(sys.stdin.readline() or 0)
    last_seen, last_change = -1, time.monotonic()
    while True:
        with lock:
            count = state["count"]
        if count >= expected:
            break
        if count != last_seen:
            last_seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > args.idle:
            break
        time.sleep(0.01)
    client.loop_stop()
    with lock:
        print(json.dumps({**state, "expected": expected}), flush=True)
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
