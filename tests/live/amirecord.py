"""A recording TCP proxy between callbridge and Asterisk's AMI: the live runs' real AMI sessions.

callbridge connects to :attr:`AmiRecorder.port`; every connection is relayed to Asterisk's AMI port and
each direction is cut into AMI messages (a banner line, then blocks ending in a blank line) with the
time each arrived. :meth:`AmiRecorder.window` marks a scenario; :meth:`AmiRecorder.write` saves the
messages of that span in the format of ``tests/fixtures/asterisk-22/`` (``NAME.rx.raw`` the exact bytes
Asterisk sent, ``NAME.tx.raw`` the exact actions, ``NAME.log`` both interleaved with relative times).

A window starts with the session's banner even when it opens mid-session, so a replay sees the start
of an AMI session; the note at the top of the ``.log`` says which slice it is.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BANNER_END = b"\r\n"
MESSAGE_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Message:
    t: float  # time.monotonic() when its last byte arrived
    sent: bool  # True: callbridge -> Asterisk (an action); False: Asterisk -> callbridge
    data: bytes
    session: int


@dataclass
class _Cutter:
    """Cuts one direction's byte stream into messages (the first message from Asterisk is the banner line)."""

    banner: bool
    buf: bytes = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self.buf += chunk
        out = []
        while True:
            if self.banner:
                end = self.buf.find(BANNER_END)
                if end < 0:
                    return out
                out.append(self.buf[: end + len(BANNER_END)])
                self.buf = self.buf[end + len(BANNER_END) :]
                self.banner = False
                continue
            end = self.buf.find(MESSAGE_END)
            if end < 0:
                return out
            out.append(self.buf[: end + len(MESSAGE_END)])
            self.buf = self.buf[end + len(MESSAGE_END) :]


@dataclass
class AmiRecorder:
    upstream_port: int
    host: str = "127.0.0.1"
    messages: list[Message] = field(default_factory=list)
    banners: dict[int, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None
    _sessions: int = 0
    _stopped: bool = False

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.getsockname()[1])

    def start(self) -> AmiRecorder:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((self.host, 0))
        self._server.listen(8)
        threading.Thread(target=self._accept, daemon=True, name="ami-recorder").start()
        return self

    def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=10)
            except OSError:
                client.close()  # Asterisk is down (restarting): callbridge sees a refused session and retries
                continue
            upstream.settimeout(None)
            with self.lock:
                self._sessions += 1
                session = self._sessions
            for src, dst, sent in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, sent, session), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, sent: bool, session: int) -> None:
        cutter = _Cutter(banner=not sent)
        try:
            while chunk := src.recv(65536):
                now = time.monotonic()
                with self.lock:
                    for data in cutter.feed(chunk):
                        if not sent and session not in self.banners:
                            self.banners[session] = data
                        self.messages.append(Message(now, sent, data, session))
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def mark(self) -> int:
        with self.lock:
            return len(self.messages)

    def events(self, start: int, name: str) -> list[dict[str, str]]:
        """The events called *name* Asterisk sent since index *start* (:meth:`mark`), as header dicts."""
        with self.lock:
            window = [m.data for m in self.messages[start:] if not m.sent]
        out = []
        for data in window:
            headers = dict(line.partition(": ")[::2] for line in data.decode("utf-8", "replace").split("\r\n") if line)
            if headers.get("Event") == name:
                out.append(headers)
        return out

    def write(self, directory: Path, name: str, start: int, note: str) -> list[Path]:
        """Save the messages from index *start* to now as ``NAME.rx.raw``, ``NAME.tx.raw`` and ``NAME.log``."""
        with self.lock:
            window = self.messages[start:]
            banners = dict(self.banners)
        if not window:
            return []
        t0 = window[0].t
        rx, tx = bytearray(), bytearray()
        log = [f"### {note}\n", "### a slice of callbridge's own AMI session, recorded by tests/live/amirecord.py\n"]
        first = window[0].session
        if window[0].data != banners.get(first):
            # opened mid-session: the session's banner first, so a replay sees an AMI session's start
            rx += banners.get(first, b"")
            log.append(f"<<< t=+{0.0:8.3f} (banner of the session)\n{banners.get(first, b'').decode()}\n")
        for m in window:
            text = m.data.decode("utf-8", "replace")
            if m.sent:
                tx += m.data
                log.append(f">>> t=+{m.t - t0:8.3f}\n{text}")
            else:
                rx += m.data
                banner = " (banner)" if m.data == banners.get(m.session) else ""
                log.append(f"<<< t=+{m.t - t0:8.3f}{banner}\n{text}" + ("\n" if banner else ""))
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"{name}.rx.raw", directory / f"{name}.tx.raw", directory / f"{name}.log"]
        paths[0].write_bytes(bytes(rx))
        paths[1].write_bytes(bytes(tx))
        paths[2].write_bytes("".join(log).encode("utf-8"))
        return paths
