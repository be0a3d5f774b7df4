"""Byte-correct AMI framing, sans-IO (h11 style: ``receive_data`` then ``next_message``).

Why not panoramisk's parser: it decodes each TCP read on its own, so a UTF-8 character split across
two reads is silently dropped ("José" → "Jos"). Here the byte stream is split on the blank line first
and each complete message is decoded whole.

Asterisk ends lines with CRLF, but a few code paths emit a bare LF; both are accepted. The first line
of a session is the banner (``Asterisk Call Manager/11.0.0``) with no blank line after it.

Speed (this is the first stage of the ingest path, benchmarked against panoramisk): the common case —
a run of complete CRLF messages — is read in one pass over its bytes by the optional C loop
(``_fastframe.c``), which builds the messages themselves: header dict, name, kind, the channel
snapshots decoders need (see ``AmiMessage._snap``) and, for the hot event kinds, the typed event.
Without it, the run is decoded once and each message's lines are split at ``": "`` by ``map`` and
turned into a dict in one call, which also proves every line had a separator. The header tuple is
built only when someone asks for it (:func:`message_fields` gives decoders the dict). Anything
irregular goes through the line-by-line reader, which defines the semantics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import FrozenInstanceError, dataclass
from itertools import chain
from itertools import repeat as _repeat
from typing import Any

from callbridge.errors import UnsafeValueError

_RunParser = Callable[[bytearray, int, int], "tuple[list[Any], int] | None"]
_c_parse_run: _RunParser | None
try:  # the optional C inner loop (setup.py builds it when a compiler is there): same results, less time
    from callbridge.ami import _fastframe
except ImportError:  # pragma: no cover - depends on the build
    _fastframe = None  # type: ignore[assignment]

BANNER_PREFIX = b"Asterisk Call Manager/"

# A message ends at the first empty line, whatever mix of CRLF / LF was used.
_END = re.compile(rb"\r?\n\r?\n")
# Control characters other than TAB may never appear in a header name or value we write.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAME_OK = re.compile(r"^[A-Za-z0-9_\-()]+$")

Headers = tuple[tuple[str, str], ...]
_split = str.split
_SEP = _repeat(": ")  # infinite and stateless: safe to share between map() calls
_ONE = _repeat(1)


class AmiMessage:
    """One AMI message as received: headers in wire order (duplicates kept, e.g. ``Variable``).

    Immutable, compared and hashed by its headers, like the frozen dataclass it replaces. Messages from
    the framer's fast path keep their text and its dict and build ``headers`` on first access: few
    objects survive per message (which keeps the garbage collector's work small), and consumers that
    only need the dict (:func:`message_fields`) never pay for the tuple.
    """

    __slots__ = ("_dest", "_event", "_fields", "_headers", "_kind", "_name", "_snap", "_text")
    __match_args__ = ("headers",)
    _headers: Headers  # unset until first use on fast-path messages
    # The CRLF block the fast path split; "" for messages built from headers, and for messages of the
    # C loop whose header names are all distinct (their dict is the wire order).
    _text: str
    _fields: dict[str, str] | None
    _name: str  # set by the C loop (the first header's value); computed when unset
    _kind: str  # set by the C loop; computed when unset
    # The channel snapshots (no prefix, ``Dest``) the C loop built when every field was there, else None:
    # decoders use them instead of reading the twelve fields again (see callbridge.ami.fields).
    _snap: Any
    _dest: Any
    # The typed event itself when the C loop could build it (the hot kinds), else None: see ami.events.decode.
    _event: Any

    def __init__(self, headers: Headers) -> None:
        _set_headers(self, headers)
        _set_text(self, "")
        _set_fields(self, None)
        _set_snap(self, None)
        _set_dest(self, None)
        _set_event(self, None)

    @property
    def headers(self) -> Headers:
        try:
            return self._headers
        except AttributeError:  # a fast-path message: the slot is filled on first use
            pass
        fields = self._fields or {}
        text = self._text
        if not text or len(fields) == text.count("\r\n") + 1:  # no repeated name: the dict is the wire order
            headers: Headers = tuple(fields.items())
        else:
            headers = tuple(map(tuple, map(_split, text.split("\r\n"), _SEP, _ONE)))  # type: ignore[arg-type]
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
        if self._text.startswith("Event: "):  # the common case, without splitting the first line
            return "event"
        first = self._first()
        if first is None:
            return "other"
        return _KINDS.get(first[0], "other")

    @property
    def name(self) -> str:
        """The event name, response status or action name (the first header's value)."""
        try:
            return self._name
        except AttributeError:
            pass
        if self._text:  # fast path: the first line has a ": " and its name no colon
            line = self._text.partition("\r\n")[0]
            return line[line.find(": ") + 2 :]
        first = self._first()
        return first[1] if first is not None else ""

    def _first(self) -> tuple[str, str] | list[str] | None:
        if self._text:  # fast path: the first line, split as the fast path split it
            return self._text.partition("\r\n")[0].split(": ", 1)
        headers = self.headers
        return headers[0] if headers else None

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
_set_name = _SLOTS["_name"].__set__
_set_snap = _SLOTS["_snap"].__set__
_set_dest = _SLOTS["_dest"].__set__
_set_event = _SLOTS["_event"].__set__
_new_message = object.__new__
_KINDS = {"Event": "event", "Response": "response", "Action": "action"}


def _lazy_message(text: str, fields: dict[str, str]) -> AmiMessage:
    msg: AmiMessage = _new_message(AmiMessage)
    _set_text(msg, text)
    _set_fields(msg, fields)
    _set_snap(msg, None)
    _set_dest(msg, None)
    _set_event(msg, None)
    return msg


_c_parse_run = None
if _fastframe is not None:
    _fastframe.configure(AmiMessage)
    _c_parse_run = _fastframe.parse_run


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
    """Parse one message block (without its terminating blank line)."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # Asterisk passes SIP display names through byte for byte; keep what we can read.
        text = block.decode("utf-8", errors="replace")
        return _parse_lines(block, text)
    return _parse_text(text, block)


def _fast_message(text: str) -> AmiMessage | None:
    """A CRLF-only block whose every line is ``Name: value`` → its message; ``None`` when unsure.

    Splitting at the first ``": "`` gives what :func:`_parse_lines` gives (split at the first ``:``,
    strip the name, drop one leading space of the value) exactly when no name holds a colon or
    surrounding whitespace; ``isprintable()`` is False for every whitespace character but the ASCII
    space, which the count rules out. ``dict()`` refuses a line without ``": "`` (a one-item split).
    A trailing CR is left to the line reader (it strips one from the last line; the split does not).
    """
    if text.endswith("\r"):
        return None
    try:
        fields = dict(map(_split, text.split("\r\n"), _SEP, _ONE))
    except ValueError:
        return None
    return _lazy_message(text, fields) if _names_ok(fields) else None


def _parse_text(text: str, block: bytes | None = None) -> AmiMessage | MalformedFrame:
    if text and "\n" not in text.replace("\r\n", ""):
        fast = _fast_message(text)
        if fast is not None:
            return fast
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


def _fast_run(text: str, out: list[Frame]) -> None:
    """Every block of a CRLF-only run (no empty block, none ending in CR) → its message.

    The pure-Python fast path, used without the C loop and as the reference it is tested against.

    :func:`_fast_message` inlined, with the name check done once for the whole run; when it fails (never
    for Asterisk's own headers), each message is checked again and a failing one re-read by the line reader.
    """
    first = len(out)
    append = out.append
    new, set_text, set_fields = _new_message, _set_text, _set_fields
    set_snap, set_dest, set_event = _set_snap, _set_dest, _set_event
    names = 0
    dicts: list[dict[str, str]] = []
    keep = dicts.append
    for block in text.split("\r\n\r\n"):
        try:
            fields = dict(map(_split, block.split("\r\n"), _SEP, _ONE))
        except ValueError:
            append(_parse_text(block))  # a line without ": " (command output, "Name:value" …)
            continue
        names += len(fields)
        keep(fields)
        msg: AmiMessage = new(AmiMessage)
        set_text(msg, block)
        set_fields(msg, fields)
        set_snap(msg, None)
        set_dest(msg, None)
        set_event(msg, None)
        append(msg)
    joined = " ".join(chain.from_iterable(dicts))
    if ":" in joined or not joined.isprintable() or joined.count(" ") != names - 1:
        for i in range(first, len(out)):
            msg = out[i]  # type: ignore[assignment]
            if type(msg) is AmiMessage and msg._text and not _names_ok(msg._fields or {}):
                out[i] = _parse_text(msg._text)


def _names_ok(fields: dict[str, str]) -> bool:
    joined = " ".join(fields)
    return ":" not in joined and joined.isprintable() and joined.count(" ") == len(fields) - 1


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
        if _c_parse_run is not None:
            # None: not a regular CRLF-only run of UTF-8, decided below as without the C loop.
            parsed = _c_parse_run(buf, pos, last)
            if parsed is not None:
                items, texts = parsed
                if texts:  # messages with a line the C loop does not take: the Python readers decide
                    items = [_parse_text(item) if type(item) is str else item for item in items]
                out += items
                return last + 4
        try:
            text = buf[pos:last].decode("utf-8")
        except UnicodeDecodeError:
            return pos
        if "\r\n\r\n\r" in text or text.endswith(("\r", "\n")):
            return pos  # stray blank lines or padding: the general loop skips them
        if (
            "\n\n" in text
            or "\n\r\n\r\n" in text  # overlapping "\n\r\n" would fool the count below
            or text.count("\n\r\n") != text.count("\r\n\r\n")
        ) and text.count("\n") != text.count("\r\n"):  # (none of these can happen in CRLF-only text)
            return pos  # message boundaries other than CRLF CRLF: the general loop finds them
        if "\r\r\n\r\n" not in text and text.count("\n") == text.count("\r\n"):
            _fast_run(text, out)  # CRLF only and no block ends in CR: every block may take the fast path
        else:
            for block in text.split("\r\n\r\n"):
                out.append(_parse_text(block))
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
