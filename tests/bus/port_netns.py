"""Run by ``tests/bus/test_bus_port_hold.py`` inside a private network namespace (``unshare --net``):
there the test may shrink the kernel's port-0 range to a few ports and use every one of them, which on the
shared machine would starve whatever else runs. Prints one JSON line of what it saw.

The scenario is the CI failure: mosquitto killed, somebody else binds port 0 until no port is left, the
broker restarts on its port. ``held`` says whether the port is kept by ``callbridge.testing.ports.PortHold``
(the Mosquitto helper's default) or picked the old way (bind port 0, close) and passed in.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import sys
import tempfile
from pathlib import Path

from callbridge.testing.mosquitto import Mosquitto
from callbridge.testing.ports import free_port

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
RANGE = (40000, 40019)


def loopback_up() -> None:
    """A new namespace's ``lo`` is down, without 127.0.0.1; ``ip link set lo up`` without iproute2."""
    with socket.socket() as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def take_every_port() -> tuple[list[socket.socket], list[int]]:
    """Other programs bind port 0 until the kernel has no port left: every other one a plain bind (a
    free-port probe), the rest servers that listen (SO_REUSEADDR, as asyncio's). Either keeps mosquitto
    from binding the same port; a non-listening SO_REUSEADDR socket would not (PortHold relies on it)."""
    socks: list[socket.socket] = []
    while True:
        s = socket.socket()
        server = len(socks) % 2 == 1
        if server:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 0))
        except OSError:
            s.close()
            return socks, [t.getsockname()[1] for t in socks]
        if server:
            s.listen()
        socks.append(s)


def main(held: bool) -> dict[str, object]:
    loopback_up()
    Path("/proc/sys/net/ipv4/ip_local_port_range").write_text(f"{RANGE[0]} {RANGE[1]}\n", encoding="ascii")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp)) if held else Mosquitto(Path(tmp), port=free_port())
        with broker:
            broker.stop(kill=True)
            others, ports = take_every_port()
            # One of them lets go of its port (never the broker's): the start's readiness probe connects
            # from a port-0 port too, and with none left it could not tell that the broker listens.
            spare = next(s for s in others if s.getsockname()[1] != broker.port)
            spare.close()
            error = ""
            try:
                broker.start()  # returns once it accepts connections on its port
            except RuntimeError as exc:
                error = str(exc)
            finally:
                for s in others:
                    s.close()
            return {"port": broker.port, "others_got": ports, "restart_error": error[-800:]}

if __name__ == "__main__":
    print(json.dumps(main(held=sys.argv[1] == "held")))
