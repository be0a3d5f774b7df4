"""``/healthz`` and ``/readyz`` answered on a thread, from a snapshot the event loop keeps fresh.

Why (issue 17.5): an orchestrator's probe must be answered within tens of milliseconds, also while an AMI
flood keeps the event loop busy. An asyncio request needs several loop iterations (accept, read, write),
and under a flood each iteration carries an ingest slice, the outbox flush and the MQTT pump: the probes
took 0.2–1 s. Here a thread owns the listening socket of the web port:

* it accepts each connection and peeks at its request line (``MSG_PEEK``: the bytes stay in the socket);
* ``GET /healthz`` and ``GET /readyz`` are answered by the thread itself: ``/readyz`` with the loop's
  current answer when the loop gives it within :data:`FRESH_WAIT_S`, else with the snapshot the loop
  refreshes every :data:`REFRESH_S` (:meth:`ProbeFront.publish`);
* every other connection (wallboard, API, SSE, console, or a request line not there within
  :data:`PEEK_S`) is handed to the event loop unread (``adopt``), which serves it as before.

The answers stay truthful: the snapshot carries the moment the loop wrote it, and when the loop has not
refreshed it for :data:`STALE_S` both probes answer 503 (``"status": "stalled"``) — a hung loop fails its
liveness probe as before, only a busy one no longer does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import orjson

#: How often the loop refreshes the snapshot (seconds).
REFRESH_S = 0.25
#: A snapshot older than this means the event loop is stuck: both probes answer 503 (seconds).
STALE_S = 5.0
#: How long the thread waits for a request line before it leaves the connection to the loop (seconds).
PEEK_S = 0.2
PROBES = {b"/healthz", b"/readyz"}
#: A request head larger than this is left to the loop's server (which refuses it with 400).
MAX_HEAD = 16 * 1024
#: How long the thread waits for the loop's own, current /readyz answer before it takes the snapshot.
FRESH_WAIT_S = 0.005


def probe_path(head: bytes) -> bytes | None:
    """The probe a request line asks for (``GET /readyz?x HTTP/1.1`` → ``/readyz``), or None."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or not parts[2].startswith(b"HTTP/1."):
        return None
    path = parts[1].split(b"?", 1)[0]
    return path if path in PROBES else None


def http_response(status: int, body: bytes) -> bytes:
    phrase = {200: "OK", 503: "Service Unavailable"}.get(status, "Error")
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            f"X-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1") + body  # fmt: skip


class ProbeFront:
    """The web port's accepting thread (see the module docstring)."""

    def __init__(self, host: str, port: int, adopt: Callable[[socket.socket], None], *,
                 clock: Callable[[], float] = time.monotonic, stale_s: float = STALE_S) -> None:  # fmt: skip
        self._adopt = adopt
        #: Set by the loop's owner: asks the loop for its current answer (a future the thread waits on).
        self.ask: Callable[[], Future[tuple[int, bytes]]] | None = None
        self._clock = clock
        self.stale_s = stale_s
        self._sock = socket.create_server((host, port), backlog=128)
        self._sock.settimeout(0.2)  # accept wakes up to see a stop
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._ready: tuple[int, bytes] = (503, orjson.dumps({"ready": False, "error": "starting"}))
        self._at = clock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"web-probes:{self.port}", daemon=True)
        #: Probes answered by the thread (the rest went to the loop).
        self.answered = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._sock.close()

    def publish(self, ready_status: int, ready_body: bytes) -> None:
        """The loop's latest ``/readyz`` answer (one tuple assignment: atomic for the reader thread)."""
        self._ready = (ready_status, ready_body)
        self._at = self._clock()

    def answer(self, path: bytes) -> tuple[int, bytes]:
        """What a probe gets now: the snapshot while it is fresh, 503 ``stalled`` once it is not."""
        stalled = self._clock() - self._at
        if stalled > self.stale_s:
            return 503, orjson.dumps({"status": "stalled", "ready": False, "loop_stalled_s": round(stalled, 1)})
        if path == b"/healthz":
            return 200, b'{"status":"ok"}'
        if self.ask is not None:  # a loop with time to spare answers with what is true right now
            future = self.ask()
            try:
                return future.result(timeout=FRESH_WAIT_S)
            except Exception:  # busy (timeout) or closed: the snapshot, and the loop skips the late ask
                future.cancel()
        return self._ready

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)  # e.g. EMFILE: do not spin
                continue
            try:
                self._one(conn)
            except OSError:
                conn.close()

    def _one(self, conn: socket.socket) -> None:
        head = self._peek_head(conn)
        path = probe_path(head) if head else None
        if path is None:
            conn.setblocking(True)
            self._adopt(conn)  # the loop serves it, unread: the peeked bytes are still in the socket
            return
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(len(head))  # the head, consumed: closing then does not reset under the reply
                status, body = self.answer(path)
                conn.sendall(http_response(status, body))
                self.answered += 1

    def _peek_head(self, conn: socket.socket) -> bytes:
        """The whole request head as peeked within PEEK_S (at most MAX_HEAD bytes), or b"" (the loop then
        serves the connection and answers what is wrong with it, e.g. 400 for a head too large)."""
        conn.settimeout(PEEK_S)
        deadline = self._clock() + PEEK_S
        seen = b""
        with contextlib.suppress(TimeoutError, OSError):
            while self._clock() < deadline:
                seen = conn.recv(MAX_HEAD + 1, socket.MSG_PEEK)
                end = seen.find(b"\r\n\r\n")
                if end >= 0:
                    return seen[: end + 4] if end + 4 <= MAX_HEAD else b""
                if not seen or len(seen) > MAX_HEAD:
                    return b""
                time.sleep(0.002)
        return b""
