"""Byte-correct AMI framing, sans-IO (h11 style: ``receive_data`` then ``next_message``).

Why not panoramisk's parser: it decodes each TCP read on its own, so a UTF-8 character split across
two reads is silently dropped ("José" → "Jos"). Here the byte stream is split on the blank line first
and each complete message is decoded whole.

Asterisk ends lines with CRLF, but a few code paths emit a bare LF; both are accepted. The first line
of a session is the banner (``Asterisk Call Manager/11.0.0``) with no blank line after it.
"""

from __future__ import annotations

import re
from itertools import repeat as _repeat
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

from callbridge.errors import UnsafeValueError

BANNER_PREFIX = b"Asterisk Call Manager/"

# A message ends at the first empty line, whatever mix of CRLF / LF was used.
_END = re.compile(rb"\r?\n\r?\n")
# Control characters other than TAB may never appear in a header name or value we write.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-()]+$")


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message as received: headers in wire order (duplicates kept, e.g. ``Variable``)."""

    headers: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def as_dict(self) -> dict[str, str]:
        """Last value wins; use :meth:`get_all` for repeated headers."""
        return dict(self.headers)

    @property
    def kind(self) -> str:
        """``event`` | ``response`` | ``action`` | ``other``."""
        if not self.headers:
            return "other"
        first = self.headers[0][0]
        return {"Event": "event", "Response": "response", "Action": "action"}.get(first, "other")

    @property
    def name(self) -> str:
        """The event name, response status or action name (the first header's value)."""
        return self.headers[0][1] if self.headers else ""


@dataclass(frozen=True, slots=True)
class Banner:
    text: str


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """A frame that could not be parsed; kept so the caller can log it (never raised)."""

    raw: bytes
    reason: str


Frame = AmiMessage | Banner | MalformedFrame


def parse_headers(block: bytes) -> AmiMessage | MalformedFrame:
    """Parse one message block (without its terminating blank line)."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # Asterisk passes SIP display names through byte for byte; keep what we can read.
        text = block.decode("utf-8", errors="replace")
        return _parse_lines(block, text)
    return _parse_text(text, block)


def _split_run(text: str) -> list[AmiMessage] | None:
    """Fast path: messages separated by CRLF CRLF, every line ``Name: value`` → the messages, else ``None``.

    Everything is done by C-level string and list operations over the whole run (one partition per
    line via ``map``, joins and counts to check), so Python code runs per message, not per header. It
    answers only when splitting each line at its first ``": "`` gives exactly what :func:`_parse_lines`
    gives (every non-empty line has ``": "``, names have no colon and no blanks, CRLF line ends only,
    no blank line but the separators); otherwise the caller takes the line-by-line reader.
    """
    if (
        not text
        or text.count("\n") != text.count("\r\n")
        or "\r\r\n" in text
        or "\r\n\r\n\r" in text
        or text.endswith(("\r", "\n"))
        or text.startswith(("\r", "\n"))
    ):
        return None
    lines = text.split("\r\n")
    names, seps, values = zip(*map(str.partition, lines, _repeat(": ")), strict=True)
    separators = text.count("\r\n\r\n")
    filled = len(lines) - separators
    if seps.count(": ") != filled:
        return None  # a line without ": "
    # Names must be what .strip() leaves and hold no colon; isprintable() is False for every whitespace
    # character but the ASCII space, which the count rules out. Empty names only on separator lines.
    joined = " ".join(names)
    if ":" in joined or not joined.isprintable() or joined.count(" ") != len(names) - 1:
        return None
    if names.count("") != separators:
        return None
    pairs = list(zip(names, values, strict=True))
    out: list[AmiMessage] = []
    start = 0
    for _ in range(separators):
        end = lines.index("", start)
        out.append(AmiMessage(tuple(pairs[start:end])))
        start = end + 1
    out.append(AmiMessage(tuple(pairs[start:])))
    return out


def _parse_text(text: str, block: bytes | None = None) -> AmiMessage | MalformedFrame:
    if "\r\n\r\n" not in text:
        fast = _split_run(text)
        if fast is not None:
            return fast[0]
    return _parse_lines(text.encode("utf-8") if block is None else block, text)


def _parse_lines(block: bytes, text: str) -> AmiMessage | MalformedFrame:
    headers: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            # Command output ("--END COMMAND--") and other oddities: keep as a value-less header.
            if headers and headers[0][0] == "Response":
                headers.append(("Output", line))
                continue
            return MalformedFrame(block, f"line without colon: {line[:80]!r}")
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    if not headers:
        return MalformedFrame(block, "empty frame")
    return AmiMessage(tuple(headers))


class AmiFramer:
    """Incremental AMI splitter: feed bytes, take complete frames."""

    __slots__ = ("_banner_seen", "_buf", "_expect_banner")

    def __init__(self, expect_banner: bool = True) -> None:
        self._buf = bytearray()
        self._expect_banner = expect_banner
        self._banner_seen = not expect_banner

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterator[Frame]:
        """Yield every complete frame buffered so far."""
        buf = self._buf
        pos = 0
        if not self._banner_seen:
            nl = buf.find(b"\n")
            if nl < 0:
                return
            line = bytes(buf[:nl]).rstrip(b"\r")
            self._banner_seen = True
            if line.startswith(BANNER_PREFIX):
                pos = nl + 1
                yield Banner(line.decode("utf-8", errors="replace"))
        # Skip stray blank lines between messages.
        while pos < len(buf) and buf[pos] in (0x0D, 0x0A):
            pos += 1
        pos = yield from self._bulk(pos)
        while True:
            while pos < len(buf) and buf[pos] in (0x0D, 0x0A):
                pos += 1
            match = _END.search(buf, pos)
            if match is None:
                break
            yield parse_headers(bytes(buf[pos : match.start()]))
            pos = match.end()
        if pos:
            del buf[:pos]

    def _bulk(self, pos: int) -> Generator[Frame, None, int]:
        """The common case in one go: every complete message up to the last CRLF CRLF, all CRLF.

        Decoding the whole run at once and splitting it in C is what makes framing cheap; it is only
        done when the run is regular (valid UTF-8, no bare-LF blank line, no stray blank lines, no
        padding at either end), where it splits exactly where the general loop would. Anything else is
        left to the general loop. Returns the position after the run.
        """
        buf = self._buf
        last = buf.rfind(b"\r\n\r\n", pos)
        if last <= pos:
            return pos
        try:
            text = buf[pos:last].decode("utf-8")
        except UnicodeDecodeError:
            return pos
        if (
            "\n\n" in text
            or "\n\r\n\r\n" in text  # overlapping "\n\r\n" would fool the count below
            or text.count("\n\r\n") != text.count("\r\n\r\n")
            or "\r\n\r\n\r" in text
            or text.endswith(("\r", "\n"))
        ):
            return pos  # message boundaries other than CRLF CRLF: the general loop finds them
        fast = _split_run(text)
        if fast is not None:
            yield from fast
        else:
            for piece in text.split("\r\n\r\n"):
                yield _parse_text(piece)
        return last + 4

    def feed(self, data: bytes) -> list[Frame]:
        self.receive_data(data)
        return list(self.frames())

    @property
    def buffered(self) -> int:
        return len(self._buf)


def check_header(name: str, value: str) -> None:
    """Refuse anything that could end a header or a frame early (AMI action injection)."""
    if not name or not _NAME_OK.match(name):
        raise UnsafeValueError(name, value)
    if _UNSAFE.search(value):
        raise UnsafeValueError(name, value)


def encode_message(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise headers to one AMI frame; every name and value is checked first (nothing partial)."""
    pairs = list(headers)
    for name, value in pairs:
        check_header(name, value)
    return "".join(f"{name}: {value}\r\n" for name, value in pairs).encode("utf-8") + b"\r\n"
