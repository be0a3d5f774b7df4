"""Typed AMI actions: one frozen dataclass per action callbridge sends.

Why typed: the rest of the code never builds header strings, so a caller-controlled value (a caller
name, a ticket number) can only ever land in the value slot it was meant for, and every header goes
through :func:`callbridge.ami.framing.check_header` (CR, LF and other control characters refused).
``to_headers()`` returns ``[("Action", name), ...]``; the client inserts the ``ActionID``.

Booleans are rendered the way the Asterisk documentation (and the recorded traces) write them for
each action: ``Async: true``, ``Paused: true|false``, ``Immediate: yes``, ``Receive: yes``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

from callbridge.errors import UnsafeValueError

from .framing import check_header

Header = tuple[str, str]

# DTMF digits Asterisk's PlayDTMF accepts (one per action).
_DTMF = re.compile(r"^[0-9A-Da-d*#wW]$")
_VAR_NAME = re.compile(r"^[A-Za-z0-9_()\-:.]+$")


def _truefalse(value: bool) -> str:
    return "true" if value else "false"


def _yesno(value: bool) -> str:
    return "yes" if value else "no"


class _Headers:
    """Small builder: skips unset optional values, renders ints, checks every header."""

    __slots__ = ("items",)

    def __init__(self, action: str) -> None:
        self.items: list[Header] = [("Action", action)]

    def add(self, name: str, value: str | int | None) -> _Headers:
        if value is None:
            return self
        # bool is an int subclass; booleans are rendered by the field's style, never as "True".
        assert not isinstance(value, bool), f"{name}: render booleans with _truefalse/_yesno"
        text = str(value)
        check_header(name, text)
        self.items.append((name, text))
        return self


BoolStyle = Literal["truefalse", "yesno"]


def hdr(header: str, *, default: Any = MISSING, bools: BoolStyle = "truefalse") -> Any:
    """Declare a dataclass field rendered as ``header`` (fields are rendered in declaration order)."""
    meta = {"header": header, "bools": bools}
    return field(metadata=meta) if default is MISSING else field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base of every action; ``name`` is the AMI action name.

    Plain actions only declare their fields with :func:`hdr`; actions whose headers depend on each
    other (Originate, Redirect, Login…) override ``_build``.
    """

    name: ClassVar[str] = ""

    def to_headers(self) -> list[Header]:
        return self._build(_Headers(self.name)).items

    def _build(self, h: _Headers) -> _Headers:
        for f in fields(self):
            header = f.metadata.get("header")
            value = getattr(self, f.name)
            if header is None or value is None:
                continue
            if isinstance(value, bool):
                value = _yesno(value) if f.metadata["bools"] == "yesno" else _truefalse(value)
            h.add(header, value)
        return h


# --- session ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Action):
    """Plain login (``secret``) or MD5 login (``key`` = :func:`md5_key` of a Challenge)."""

    name: ClassVar[str] = "Login"
    username: str
    secret: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    events: str = "on"

    def _build(self, h: _Headers) -> _Headers:
        if (self.secret is None) == (self.key is None):
            raise ValueError("Login needs exactly one of secret (plain) or key (md5)")
        h.add("Username", self.username)
        if self.key is not None:
            h.add("AuthType", "md5").add("Key", self.key)
        else:
            h.add("Secret", self.secret)
        return h.add("Events", self.events)


def md5_key(challenge: str, secret: str) -> str:
    """The ``Key`` of an MD5 login: md5(challenge + secret), as Asterisk's manager.c computes it."""
    return hashlib.md5((challenge + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge(Action):
    name: ClassVar[str] = "Challenge"
    auth_type: str = hdr("AuthType", default="MD5")


@dataclass(frozen=True, slots=True, kw_only=True)
class Logoff(Action):
    name: ClassVar[str] = "Logoff"


@dataclass(frozen=True, slots=True, kw_only=True)
class Events(Action):
    """``event_mask``: ``on``, ``off`` or a comma list of classes (``call,agent``)."""

    name: ClassVar[str] = "Events"
    event_mask: str = hdr("EventMask", default="on")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Action):
    name: ClassVar[str] = "Ping"


# --- call control -------------------------------------------------------------------------------


def _caller_id(name: str | None, num: str | None) -> str | None:
    if num is None and name is None:
        return None
    # Quotes and angle brackets would change how Asterisk splits name and number.
    for part, header in ((name or "", "CallerID(name)"), (num or "", "CallerID(num)")):
        if any(ch in part for ch in '"<>'):
            raise UnsafeValueError(header, part)
    if name is None:
        return f"<{num}>"
    return f'"{name}" <{num or ""}>'


def _variables(h: _Headers, variables: tuple[tuple[str, str], ...]) -> None:
    for key, value in variables:
        # A '=' or ',' in the name would split differently on the Asterisk side.
        if not _VAR_NAME.match(key):
            raise UnsafeValueError("Variable", key)
        h.add("Variable", f"{key}={value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Originate(Action):
    """Dial ``channel``; on answer run ``context/exten/priority`` or ``application(data)``.

    ``variables`` become one ``Variable: k=v`` header each (``__CB_X`` for inherited variables).
    ``timeout_ms`` is Asterisk's ring timeout in milliseconds.
    """

    name: ClassVar[str] = "Originate"
    channel: str
    context: str | None = None
    exten: str | None = None
    priority: int | None = None
    application: str | None = None
    data: str | None = None
    caller_num: str | None = None
    caller_name: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    timeout_ms: int | None = None
    async_: bool = True
    channel_id: str | None = None
    other_channel_id: str | None = None
    account: str | None = None

    def _build(self, h: _Headers) -> _Headers:
        dialplan = self.exten is not None
        if dialplan == (self.application is not None):
            raise ValueError("Originate needs either exten (with context) or application")
        h.add("Channel", self.channel).add("Timeout", self.timeout_ms)
        h.add("Async", _truefalse(self.async_))
        if dialplan:
            h.add("Context", self.context).add("Exten", self.exten)
            h.add("Priority", 1 if self.priority is None else self.priority)
        else:
            h.add("Application", self.application).add("Data", self.data)
        h.add("CallerID", _caller_id(self.caller_name, self.caller_num))
        _variables(h, self.variables)
        h.add("ChannelId", self.channel_id).add("OtherChannelId", self.other_channel_id)
        return h.add("Account", self.account)


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect(Action):
    """Send ``channel`` (and optionally ``extra_channel``, e.g. its peer) to a dialplan location."""

    name: ClassVar[str] = "Redirect"
    channel: str
    context: str
    exten: str
    priority: int = 1
    extra_channel: str | None = None
    extra_context: str | None = None
    extra_exten: str | None = None
    extra_priority: int | None = None

    def _build(self, h: _Headers) -> _Headers:
        h.add("Channel", self.channel).add("Context", self.context)
        h.add("Exten", self.exten).add("Priority", self.priority)
        if self.extra_channel is not None:
            h.add("ExtraChannel", self.extra_channel)
            h.add("ExtraContext", self.extra_context or self.context)
            h.add("ExtraExten", self.extra_exten or self.exten)
            h.add("ExtraPriority", self.priority if self.extra_priority is None else self.extra_priority)
        return h


@dataclass(frozen=True, slots=True, kw_only=True)
class BlindTransfer(Action):
    """Blind-transfer the *peer* of ``channel`` (the agent's channel) to ``exten@context``."""

    name: ClassVar[str] = "BlindTransfer"
    channel: str = hdr("Channel")
    context: str = hdr("Context")
    exten: str = hdr("Exten")


@dataclass(frozen=True, slots=True, kw_only=True)
class Atxfer(Action):
    name: ClassVar[str] = "Atxfer"
    channel: str = hdr("Channel")
    context: str | None = hdr("Context", default=None)
    exten: str = hdr("Exten")


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAtxfer(Action):
    name: ClassVar[str] = "CancelAtxfer"
    channel: str = hdr("Channel")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridge(Action):
    name: ClassVar[str] = "Bridge"
    channel1: str = hdr("Channel1")
    channel2: str = hdr("Channel2")
    tone: Literal["no", "Channel1", "Channel2", "Both"] | None = hdr("Tone", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(Action):
    """Hang up ``channel``; a ``/regex/`` channel hangs up every match (see :meth:`matching`)."""

    name: ClassVar[str] = "Hangup"
    channel: str = hdr("Channel")
    cause: int | None = hdr("Cause", default=None)

    @classmethod
    def matching(cls, pattern: str, cause: int | None = None) -> Hangup:
        return cls(channel=f"/{pattern}/", cause=cause)


@dataclass(frozen=True, slots=True, kw_only=True)
class Setvar(Action):
    """Set a channel variable, or a global one when ``channel`` is None."""

    name: ClassVar[str] = "Setvar"
    channel: str | None = hdr("Channel", default=None)
    variable: str = hdr("Variable")
    value: str = hdr("Value")


@dataclass(frozen=True, slots=True, kw_only=True)
class Getvar(Action):
    """Read a variable (or a function such as ``CALLERID(num)``); the reply's ``Value`` header."""

    name: ClassVar[str] = "Getvar"
    channel: str | None = hdr("Channel", default=None)
    variable: str = hdr("Variable")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayDTMF(Action):
    name: ClassVar[str] = "PlayDTMF"
    channel: str = hdr("Channel")
    digit: str = hdr("Digit")
    duration_ms: int | None = hdr("Duration", default=None)
    receive: bool | None = hdr("Receive", default=None, bools="yesno")

    def _build(self, h: _Headers) -> _Headers:
        if not _DTMF.match(self.digit):
            raise UnsafeValueError("Digit", self.digit)
        return Action._build(self, h)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(Action):
    """Emit ``Event: UserEvent`` with ``UserEvent: <user_event>`` and the given extra headers."""

    name: ClassVar[str] = "UserEvent"
    user_event: str
    headers: tuple[tuple[str, str], ...] = ()

    def _build(self, h: _Headers) -> _Headers:
        h.add("UserEvent", self.user_event)
        for key, value in self.headers:
            if key.lower() in ("action", "actionid", "userevent"):
                raise UnsafeValueError(key, value)
            h.add(key, value)
        return h


# --- queues -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAdd(Action):
    name: ClassVar[str] = "QueueAdd"
    queue: str = hdr("Queue")
    interface: str = hdr("Interface")
    member_name: str | None = hdr("MemberName", default=None)
    penalty: int | None = hdr("Penalty", default=None)
    paused: bool | None = hdr("Paused", default=None)
    state_interface: str | None = hdr("StateInterface", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRemove(Action):
    name: ClassVar[str] = "QueueRemove"
    queue: str = hdr("Queue")
    interface: str = hdr("Interface")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePause(Action):
    """Pause/unpause ``interface`` in ``queue`` (all its queues when ``queue`` is None)."""

    name: ClassVar[str] = "QueuePause"
    interface: str = hdr("Interface")
    paused: bool = hdr("Paused")
    queue: str | None = hdr("Queue", default=None)
    reason: str | None = hdr("Reason", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStatus(Action):
    name: ClassVar[str] = "QueueStatus"
    queue: str | None = hdr("Queue", default=None)
    member: str | None = hdr("Member", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSummary(Action):
    name: ClassVar[str] = "QueueSummary"
    queue: str | None = hdr("Queue", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueChangePriorityCaller(Action):
    """Change a waiting caller's priority; ``immediate`` also moves it in the queue now."""

    name: ClassVar[str] = "QueueChangePriorityCaller"
    queue: str = hdr("Queue")
    caller: str = hdr("Caller")
    priority: int = hdr("Priority")
    immediate: bool | None = hdr("Immediate", default=None, bools="yesno")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueWithdrawCaller(Action):
    name: ClassVar[str] = "QueueWithdrawCaller"
    queue: str = hdr("Queue")
    caller: str = hdr("Caller")
    withdraw_info: str | None = hdr("WithdrawInfo", default=None)


# --- conferences --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeListRooms(Action):
    name: ClassVar[str] = "ConfbridgeListRooms"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeList(Action):
    name: ClassVar[str] = "ConfbridgeList"
    conference: str = hdr("Conference")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeKick(Action):
    """``channel`` may also be ``all`` or ``participants`` (Asterisk keywords)."""

    name: ClassVar[str] = "ConfbridgeKick"
    conference: str = hdr("Conference")
    channel: str = hdr("Channel")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeMute(Action):
    name: ClassVar[str] = "ConfbridgeMute"
    conference: str = hdr("Conference")
    channel: str = hdr("Channel")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeUnmute(Action):
    name: ClassVar[str] = "ConfbridgeUnmute"
    conference: str = hdr("Conference")
    channel: str = hdr("Channel")


# --- status -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannels(Action):
    name: ClassVar[str] = "CoreShowChannels"


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeList(Action):
    name: ClassVar[str] = "BridgeList"
    bridge_type: str | None = hdr("BridgeType", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeInfo(Action):
    name: ClassVar[str] = "BridgeInfo"
    bridge_uniqueid: str = hdr("BridgeUniqueid")


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSettings(Action):
    name: ClassVar[str] = "CoreSettings"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreStatus(Action):
    name: ClassVar[str] = "CoreStatus"
