"""``python -m bench.probe_control``: the overload benchmark's control for probe latency.

A minimal Python HTTP responder (one thread: accept, read the request, a fixed 200, close), started on the
daemon's core and probed the same way as ``/healthz`` in the same instants: what any Python process on that
core gets from the machine at that moment. When the control's p99 is as high as the daemon's, the time
went to the machine (other processes on the core), not to the daemon. Prints its port, serves until killed.
"""

from __future__ import annotations

import socket
import sys

REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 15\r\n\r\n"
         b'{"status":"ok"}')  # fmt: skip


def main() -> int:
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                conn.settimeout(2.0)
                seen = b""
                while b"\r\n\r\n" not in seen and len(seen) < 16384:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    seen += chunk
                conn.sendall(REPLY)
            except OSError:
                continue


if __name__ == "__main__":
    sys.exit(main())
