"""A scripted AMI server run in its own process (so it never shares the measured client's core).

``python -m bench.ami_server FILE`` listens on 127.0.0.1 (a free port), prints the port, and for every
connection: writes the banner, answers the client's actions (Login, and the resync lists of
callbridge's client, echoing ActionIDs as Asterisk does), then streams the rest of FILE with
``sendfile`` (no Python copies) and reads until the client closes.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path

from bench.amistream import BANNER

_LISTS = {"coreshowchannels": "CoreShowChannelsComplete", "bridgelist": "BridgeListComplete",
          "queuestatus": "QueueStatusComplete"}


def _header(block: bytes, name: bytes) -> bytes:
    for line in block.split(b"\r\n"):
        key, _, value = line.partition(b": ")
        if key.lower() == name:
            return value
    return b""


def reply(block: bytes) -> tuple[bytes, bool]:
    """The reply to one action, and whether the stream starts after it.

    ``Login`` as ``plain`` (panoramisk, the bare baseline) starts the stream at once; any other user
    (callbridge's client) resyncs first, and the stream starts after the last resync action
    (``ConfbridgeListRooms``, answered as Asterisk does when there is no conference).
    """
    action = _header(block, b"action").lower().decode()
    aid = _header(block, b"actionid")
    head = b"ActionID: " + aid + b"\r\n"
    if action == "login":
        return b"Response: Success\r\n" + head + b"Message: Authentication accepted\r\n\r\n", (
            _header(block, b"username") == b"plain"
        )
    if action in _LISTS:
        return (
            b"Response: Success\r\n" + head + b"EventList: start\r\nMessage: listed\r\n\r\n"
            + b"Event: " + _LISTS[action].encode() + b"\r\n" + head + b"EventList: Complete\r\nListItems: 0\r\n\r\n"
        ), False
    if action == "confbridgelistrooms":
        return b"Response: Error\r\n" + head + b"Message: No active conferences.\r\n\r\n", True
    return b"Response: Success\r\n" + head + b"Ping: Pong\r\n\r\n", False


def serve_one(conn: socket.socket, path: Path) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(BANNER)
        buf = b""
        start = False
        while not start:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf and not start:
                block, buf = buf.split(b"\r\n\r\n", 1)
                answer, start = reply(block)
                conn.sendall(answer)
        with path.open("rb") as src:
            conn.sendfile(src, offset=len(BANNER))
        # Later actions (keepalive pings) are read and not answered: the stream is one write.
        conn.settimeout(600)
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
