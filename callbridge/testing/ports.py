"""Loopback ports for the servers a test (or a benchmark, or the demo) starts.

:func:`free_port` is the classic pick: bind port 0, read the port, close. Fine for a server that binds it
at once and never lets go. A server that a test *restarts on the same port* (a broker killed for 60 s,
an Asterisk after ``core restart now``, a daemon's web console run twice) leaves its port free in the
meantime, and anything else on the machine that binds port 0 — another suite, another benchmark — may be
handed exactly that port: the restart then fails with "Address already in use". That is the likely cause
of a CI failure: mosquitto, restarted after a 60 s kill -9 outage while another suite ran on the machine,
exited with 1 (the part of its log that would have said why was cut from the report; the start now shows
that start's own lines).

:class:`PortHold` closes that gap: it keeps a socket bound to the port, with ``SO_REUSEADDR`` and not
listening, for as long as the test owns the port. Linux never hands a port that has a bound socket to a
``bind(("127.0.0.1", 0))``, with or without ``SO_REUSEADDR``; a server that sets ``SO_REUSEADDR`` itself
(mosquitto, PostgreSQL, Asterisk's AMI, asyncio's and uvloop's ``start_server``) can still bind and listen
on it, since the held socket does not listen. ``tests/bus/test_bus_port_hold.py`` checks both on the
kernel it runs on, the first in a private network namespace where it may take every port-0 port.
"""

from __future__ import annotations

import socket
from types import TracebackType


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free now (for a server that binds it at once and keeps it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PortHold:
    """A TCP port on ``host`` kept from everybody else's port-0 binds until :meth:`close`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, 0))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]

    @property
    def held(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> PortHold:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
