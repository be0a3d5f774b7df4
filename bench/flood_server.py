"""An AMI server that floods on demand, in its own process (the overload benchmark's PBX).

``python -m bench.flood_server`` listens on 127.0.0.1 (a free port) and prints the port. Every connection
gets the banner and answers to its actions (Login, the resync lists, Ping — as :mod:`bench.ami_server`
answers them), and is then idle until a flood is asked for on stdin::

    flood RATE SECONDS     → whole calls of bench/amistream.py at RATE events/s for SECONDS, then one JSON
                             line on stdout: {"events": n, "bytes": b, "seconds": s, "rate": r, "behind_s": d}
    quit

The events are written in 5 ms ticks, cut at event boundaries, so a Ping reply can go between two ticks.
A flood is real calls (400 at a time, each created, answered, bridged and hung up): each pass over the
generated calls gets its own uniqueid epoch and bridge ids, so no call repeats an earlier one. When the
client reads slower than RATE, ``sendall`` blocks and the flood falls behind its schedule (``behind_s``:
TCP back-pressure reached the server, as it reaches Asterisk's AMI writer). When the client drops the
session the flood goes on with its next one (``disconnects``; the events in between are counted as sent).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from itertools import accumulate

from bench.ami_server import reply
from bench.amistream import BANNER, generate

TICK_S = 0.005
#: Events generated once; a longer flood passes over them again with a new epoch.
PASS_EVENTS = 100_000
EPOCH = b"1795917000."
BRIDGE = b"-5c1e-"


class Calls:
    """The generated calls (one bytes object) and the end offset of each event in it."""

    def __init__(self, events: int) -> None:
        items = list(generate(events))
        self.blob = b"".join(items)
        self.ends = list(accumulate(len(i) for i in items))
        self.passes = 0

    def next_pass(self) -> bytes:
        """The calls again, as new calls: another uniqueid epoch and other bridge ids (same lengths)."""
        self.passes += 1
        epoch = str(1795917000 + 1000 * self.passes).encode() + b"."
        return self.blob.replace(EPOCH, epoch).replace(BRIDGE, b"-%04x-" % (self.passes % 0x10000))


class Session:
    """One client connection: answers its actions on a reader thread; floods are written under the lock."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.open = True
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(BANNER)
        threading.Thread(target=self._answer, daemon=True).start()

    def _answer(self) -> None:
        buf = b""
        try:
            while data := self.conn.recv(65536):
                buf += data
                while b"\r\n\r\n" in buf:
                    block, buf = buf.split(b"\r\n\r\n", 1)
                    answer, _ = reply(block)
                    self.send(answer)
        except OSError:
            pass
        self.open = False

    def send(self, data: bytes) -> None:
        with self.lock:
            self.conn.sendall(data)


class FloodServer:
    def __init__(self) -> None:
        self._calls: dict[int, Calls] = {}
        self.sessions: list[Session] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def _accept(self) -> None:
        while True:
            conn, _ = self.server.accept()
            self.sessions = [s for s in self.sessions if s.open] + [Session(conn)]

    def newest(self, other_than: Session | None = None, wait_s: float = 30.0) -> Session:
        """The newest open session (waiting for the client to reconnect after a drop)."""
        deadline = time.monotonic() + wait_s
        while True:
            found = [s for s in self.sessions if s.open and s is not other_than]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise RuntimeError("no AMI client connected")
            time.sleep(0.05)

    def calls(self, events: int) -> Calls:
        if events not in self._calls:
            self._calls[events] = Calls(events)
        return self._calls[events]

    def flood(self, rate: float, seconds: float) -> dict[str, float]:
        """Write ``rate`` events/s for about ``seconds`` (whole passes of whole calls) to the newest session."""
        session = self.newest()
        disconnects = 0
        passes = max(1, round(rate * seconds / PASS_EVENTS))
        calls = self.calls(round(rate * seconds / passes))
        ends = calls.ends
        sent_events = sent_bytes = 0
        start = time.monotonic()
        for _ in range(passes):
            blob, index, offset = calls.next_pass(), 0, 0
            while index < len(ends):
                due = round(rate * (time.monotonic() - start + TICK_S)) - sent_events
                take = min(max(due, 0), len(ends) - index)
                if take:
                    end = ends[index + take - 1]
                    try:
                        session.send(blob[offset:end])
                    except OSError:  # the client dropped the session: go on with its next one
                        disconnects += 1
                        session = self.newest(other_than=session)
                    sent_events += take
                    sent_bytes += end - offset
                    index += take
                    offset = end
                pause = start + sent_events / rate - time.monotonic()
                if pause > 0:
                    time.sleep(min(pause, TICK_S))
        elapsed = time.monotonic() - start
        return {"events": sent_events, "bytes": sent_bytes, "seconds": round(elapsed, 3), "disconnects": disconnects,
                "rate": round(sent_events / elapsed, 1),
                "behind_s": round(max(0.0, elapsed - sent_events / rate), 3)}


def main() -> int:
    server = FloodServer()
    print(server.port, flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["flood"]:
            print(json.dumps(server.flood(float(words[1]), float(words[2]))), flush=True)
        elif words[:1] == ["quit"]:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
