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

What still held a probe under a flood (p99 24–37 ms, the loop busy): the GIL. Every blocking socket call
gives it up and takes it back, and taking it back from a busy main thread waits for the interpreter's
switch interval (5 ms) or for the C call the main thread is in. A probe made eight such round trips
(``accept`` with a time-out: poll, accept, set blocking; a peek with a time-out: poll, recv; a second recv;
``sendall`` with a time-out: poll, send), plus a 5 ms wait for a loop that was busy anyway. Now:

* the listening socket blocks (no time-out: one round trip per ``accept``; :meth:`ProbeFront.stop` wakes it
  with a connection of its own); the request is peeked and the answer sent with ``MSG_DONTWAIT`` on the
  blocking socket (one round trip each, no poll), and the request is consumed and the socket closed only
  after the answer is sent — three round trips before the client has its answer; a request not there yet
  falls back to the waiting peek;
* the loop is asked for its fresh ``/readyz`` answer only while it answered the last ask in time: after
  a miss the snapshot (at most :data:`REFRESH_S` old) is the answer for :data:`BUSY_S`;
* while the front runs, the interpreter's switch interval is :data:`SWITCH_S` (from 5 ms): a thread that
  wants the GIL gets it from a busy main thread within about a millisecond. Only a thread that waits for
  the GIL causes a switch, and the daemon's other threads are idle most of the time, so the main thread
  pays nothing measurable for it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
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
#: After the loop missed an ask, how long the snapshot is the answer without asking (seconds).
BUSY_S = 1.0
#: The interpreter's switch interval while the front runs (seconds; CPython's default is 0.005).
SWITCH_S = 0.001


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
        self._sock = socket.create_server((host, port), backlog=128)  # blocking: stop() wakes it
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._ready: tuple[int, bytes] = (503, orjson.dumps({"ready": False, "error": "starting"}))
        self._at = clock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"web-probes:{self.port}", daemon=True)
        #: Probes answered by the thread (the rest went to the loop).
        self.answered = 0
        self._busy_until = 0.0  # the loop missed an ask: no asking until then
        self._switch: float | None = None  # the switch interval before start()

    def start(self) -> None:
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_S))
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1.0):
                pass  # wakes the blocking accept, which then sees the stop
            self._thread.join(timeout=2.0)
        self._sock.close()
        if self._switch is not None and sys.getswitchinterval() == min(self._switch, SWITCH_S):
            sys.setswitchinterval(self._switch)  # unless someone else changed it meanwhile
        self._switch = None

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
        if self.ask is not None and self._clock() >= self._busy_until:
            future = self.ask()  # a loop with time to spare answers with what is true right now
            try:
                return future.result(timeout=FRESH_WAIT_S)
            except Exception:  # busy (timeout) or closed: the snapshot, and the loop skips the late ask
                future.cancel()
                self._busy_until = self._clock() + BUSY_S
        return self._ready

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)  # e.g. EMFILE: do not spin
                continue
            if self._stopping.is_set():
                conn.close()
                return
            try:
                self._one(conn)
            except OSError:
                conn.close()

    def _one(self, conn: socket.socket) -> None:
        head = self._head_now(conn) or self._peek_head(conn)
        path = probe_path(head) if head else None
        if path is None:
            conn.setblocking(True)
            self._adopt(conn)  # the loop serves it, unread: the peeked bytes are still in the socket
            return
        with conn, contextlib.suppress(OSError):
            reply = http_response(*self.answer(path))
            sent = conn.send(reply, socket.MSG_DONTWAIT)  # a few hundred bytes: the socket buffer takes them
            if sent < len(reply):
                conn.settimeout(1.0)
                conn.sendall(reply[sent:])
            self.answered += 1
            conn.recv(len(head), socket.MSG_DONTWAIT)  # the head, consumed: closing does not reset the reply

    @staticmethod
    def _head_now(conn: socket.socket) -> bytes:
        """The request head when it is all there already (the usual case: one round trip for the GIL), else
        b"" (then :meth:`_peek_head` waits for it)."""
        try:
            seen = conn.recv(MAX_HEAD + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return b""
        end = seen.find(b"\r\n\r\n")
        return seen[: end + 4] if end >= 0 and end + 4 <= MAX_HEAD else b""

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
