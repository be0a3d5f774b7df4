"""A transport that swallows everything: for feeding a protocol recorded bytes without a socket."""

from __future__ import annotations


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
