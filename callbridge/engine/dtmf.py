"""One-key codes from DTMF digits: a digit buffer per agent channel with an inter-digit timeout.

Codes are ``*``/``#`` followed by 1-3 digits and no code is a prefix of another one of the same hotline
(``callbridge check`` refuses that), so a buffer either matches a code, is a prefix of one (wait for the
next digit), or is noise (dropped; the digit may start a new code).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DigitResult:
    code: str | None = None  # a complete code was pressed
    waiting: bool = False  # the buffer is a prefix of a code: arm the inter-digit timer


@dataclass(slots=True)
class DigitBuffers:
    """Pure: the caller supplies the codes valid for the channel's hotline and mode."""

    _buffers: dict[str, str] = field(default_factory=dict)

    def press(self, channel: str, digit: str, codes: Collection[str]) -> DigitResult:
        buffer = self._buffers.get(channel, "") + digit
        for candidate in (buffer, digit):  # when the buffer is noise the digit may start a new code
            if candidate in codes:
                self._buffers.pop(channel, None)
                return DigitResult(code=candidate)
            if any(code.startswith(candidate) for code in codes):
                self._buffers[channel] = candidate
                return DigitResult(waiting=True)
        self._buffers.pop(channel, None)
        return DigitResult()

    def expire(self, channel: str) -> str:
        """The inter-digit timeout fired: forget the partial code (returned for the log)."""
        return self._buffers.pop(channel, "")

    def forget(self, channel: str) -> None:
        self._buffers.pop(channel, None)

    def pending(self, channel: str) -> str:
        return self._buffers.get(channel, "")
