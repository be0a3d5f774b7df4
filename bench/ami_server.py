"""A scripted AMI server run in its own process (so it never shares the measured client's core).

``python -m bench.ami_server FILE`` listens on 127.0.0.1 (a free port), prints the port, and for every
connection: writes the banner, waits for the client's ``Login`` action, answers it (echoing the
ActionID, as Asterisk does), then streams the rest of FILE with ``sendfile`` (no Python copies) and
keeps reading until the client closes. Later actions (Ping …) are read and ignored.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
from pathlib import Path

from bench.amistream import BANNER

_ACTION_ID = re.compile(rb"ActionID: *([^\r\n]*)", re.IGNORECASE)


def serve_one(conn: socket.socket, path: Path) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(BANNER)
        buf = b""
        while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        match = _ACTION_ID.search(buf)
        action_id = match.group(1) if match else b""
        conn.sendall(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        with path.open("rb") as src:
            conn.sendfile(src, offset=len(BANNER))
        conn.settimeout(120)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve_one, args=(conn, args.file), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
