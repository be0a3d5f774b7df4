"""Byte-correct AMI framing, sans-IO (h11 style: ``receive_data`` then ``next_message``).

Why not panoramisk's parser: it decodes each TCP read on its own, so a UTF-8 character split across
two reads is silently dropped ("José" → "Jos"). Here the byte stream is split on the blank line first
and each complete message is decoded whole.

Asterisk ends lines with CRLF, but a few code paths emit a bare LF; both are accepted. The first line
of a session is the banner (``Asterisk Call Manager/11.0.0``) with no blank line after it.

Two paths, one meaning: the line-by-line reader here (:func:`parse_headers`) defines the semantics and reads
everything when the C loop is not built; the C loop (:mod:`callbridge.ami.fast`) reads the common case — a
run of complete CRLF messages — in one pass, builds the messages itself (header dict, name, kind and, for
the bulk event kinds, the typed event) and hands any message it does not take back to the line reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

from callbridge.ami.fast import RunParser, run_parser
from callbridge.errors import UnsafeValueError

BANNER_PREFIX = b"Asterisk Call Manager/"

# A message ends at the first empty line, whatever mix of CRLF / LF was used.
_END = re.compile(rb"\r?\n\r?\n")
# Control characters other than TAB may never appear in a header name or value we write.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-()]+$")

Headers = tuple[tuple[str, str], ...]


class AmiMessage:
    """One AMI message as received: headers in wire order (duplicates kept, e.g. ``Variable``).

    Immutable, compared and hashed by its headers, like the frozen dataclass it replaces. Messages of the C
    loop come with their dict, name and kind and build ``headers`` on first access: few objects survive per
    message (which keeps the garbage collector's work small), and consumers that only need the dict
    (:func:`message_fields`) never pay for the tuple.
    """

    __slots__ = ("_fields", "_headers", "_kind", "_name", "_text", "typed_event")
    __match_args__ = ("headers",)
    _headers: Headers  # unset until first use on messages of the C loop
    # The CRLF block of a C-loop message whose header names repeat (the dict alone has lost the wire order
    # then); "" otherwise.
    _text: str
    _fields: dict[str, str] | None
    _name: str  # set by the C loop (the first header's value); computed when unset
    _kind: str  # set by the C loop; computed when unset
    #: The typed event the C loop built from this message (the kinds of callbridge.ami.fast.C_EVENTS), else
    #: None: callbridge.ami.decode.decode returns it as it is.
    typed_event: Any

    def __init__(self, headers: Headers) -> None:
        _set_headers(self, headers)
        _set_text(self, "")
        _set_fields(self, None)
        _set_event(self, None)

    @property
    def headers(self) -> Headers:
        try:
            return self._headers
        except AttributeError:  # a message of the C loop: the slot is filled on first use
            pass
        text = self._text
        if text:  # a repeated name: the text has the wire order (every line of it is "Name: value")
            headers: Headers = tuple((name, value) for name, _, value in (line.partition(": ")
                                                                          for line in text.split("\r\n")))
        else:  # no repeated name: the dict is the wire order
            headers = tuple((self._fields or {}).items())
        _set_headers(self, headers)
        return headers

    def get(self, name: str, default: str = "") -> str:
        """The first value of header ``name``."""
        fields = self._fields
        if fields is not None and name not in fields:
            return default  # the common miss (e.g. ActionID of a live event) without a scan
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def as_dict(self) -> dict[str, str]:
        """Last value wins; use :meth:`get_all` for repeated headers."""
        return dict(message_fields(self))

    @property
    def kind(self) -> str:
        """``event`` | ``response`` | ``action`` | ``other``."""
        try:
            return self._kind
        except AttributeError:
            pass
        headers = self.headers
        return _KINDS.get(headers[0][0], "other") if headers else "other"

    @property
    def name(self) -> str:
        """The event name, response status or action name (the first header's value)."""
        try:
            return self._name
        except AttributeError:
            pass
        headers = self.headers
        return headers[0][1] if headers else ""

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not AmiMessage:
            return NotImplemented
        return self.headers == other.headers

    def __hash__(self) -> int:
        return hash((self.headers,))

    def __repr__(self) -> str:
        return f"AmiMessage(headers={self.headers!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (AmiMessage, (self.headers,))


# Slot setters: the instance refuses ordinary assignment (it is immutable to everyone else).
_SLOTS: dict[str, Any] = dict(vars(AmiMessage))
_set_headers = _SLOTS["_headers"].__set__
_set_text = _SLOTS["_text"].__set__
_set_fields = _SLOTS["_fields"].__set__
_set_event = _SLOTS["typed_event"].__set__
_KINDS = {"Event": "event", "Response": "response", "Action": "action"}


def message_fields(msg: AmiMessage) -> dict[str, str]:
    """The headers as a dict (last value wins), built once per message. Callers must not mutate it."""
    fields = msg._fields
    if fields is None:
        fields = dict(msg.headers)
        _set_fields(msg, fields)
    return fields


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
    """Parse one message block (without its terminating blank line): the reference reader."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # Asterisk passes SIP display names through byte for byte; keep what we can read.
        text = block.decode("utf-8", errors="replace")
    return _parse_lines(block, text)


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

    __slots__ = ("_banner_seen", "_buf", "_c_run", "_expect_banner")

    def __init__(self, expect_banner: bool = True, *, use_c: bool = True) -> None:
        """``use_c=False``: the line reader reads everything (the reference the C loop is tested against)."""
        self._buf = bytearray()
        self._expect_banner = expect_banner
        self._banner_seen = not expect_banner
        self._c_run: RunParser | None = run_parser(AmiMessage) if use_c else None

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterator[Frame]:
        """Every complete frame buffered so far."""
        return iter(self._take())

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return self._take()

    def _take(self) -> list[Frame]:
        buf = self._buf
        out: list[Frame] = []
        pos = 0
        if not self._banner_seen:
            nl = buf.find(b"\n")
            if nl < 0:
                return out
            line = bytes(buf[:nl]).rstrip(b"\r")
            self._banner_seen = True
            if line.startswith(BANNER_PREFIX):
                pos = nl + 1
                out.append(Banner(line.decode("utf-8", errors="replace")))
        # Skip stray blank lines between messages.
        while pos < len(buf) and buf[pos] in (0x0D, 0x0A):
            pos += 1
        pos = self._bulk(pos, out)
        while True:
            while pos < len(buf) and buf[pos] in (0x0D, 0x0A):
                pos += 1
            match = _END.search(buf, pos)
            if match is None:
                break
            out.append(parse_headers(bytes(buf[pos : match.start()])))
            pos = match.end()
        if pos:
            del buf[:pos]
        return out

    def _bulk(self, pos: int, out: list[Frame]) -> int:
        """The common case in one go: every complete message up to the last CRLF CRLF, read by the C loop.

        The C loop gives the run back (``None``) when it is irregular (a bare LF, stray blank lines,
        padding, invalid UTF-8): the general loop reads it then, as without the C loop. A message with a
        line the C loop does not take comes back as its text, for the line reader. Returns the position
        after what was read.
        """
        c_run = self._c_run
        if c_run is None:
            return pos
        buf = self._buf
        last = buf.rfind(b"\r\n\r\n", pos)
        if last <= pos:
            return pos
        parsed = c_run(buf, pos, last)
        if parsed is None:
            return pos
        items, texts = parsed
        if texts:
            items = [_parse_lines(item.encode("utf-8"), item) if type(item) is str else item for item in items]
        out += items
        return last + 4

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
