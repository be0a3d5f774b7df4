"""Typed AMI actions that act on calls and conference rooms: Originate, Redirect, transfers, Hangup,
channel variables, DTMF, UserEvent, and the ConfBridge list/kick/mute actions.

These carry caller-controlled values (numbers, names, variables), hence the extra checks here on top of
the header check of :mod:`~callbridge.ami.actions.base`. One family of the :mod:`callbridge.ami.actions`
catalogue (import the actions from there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from callbridge.errors import UnsafeValueError

from .base import Action, HeaderBuilder, hdr, truefalse

# DTMF digits Asterisk's PlayDTMF accepts (one per action).
_DTMF = re.compile(r"^[0-9A-Da-d*#wW]$")
_VAR_NAME = re.compile(r"^[A-Za-z0-9_()\-:.]+$")


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


def _variables(h: HeaderBuilder, variables: tuple[tuple[str, str], ...]) -> None:
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

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
        dialplan = self.exten is not None
        if dialplan == (self.application is not None):
            raise ValueError("Originate needs either exten (with context) or application")
        h.add("Channel", self.channel).add("Timeout", self.timeout_ms)
        h.add("Async", truefalse(self.async_))
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

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
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

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
        if not _DTMF.match(self.digit):
            raise UnsafeValueError("Digit", self.digit)
        return Action.add_headers(self, h)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(Action):
    """Emit ``Event: UserEvent`` with ``UserEvent: <user_event>`` and the given extra headers."""

    name: ClassVar[str] = "UserEvent"
    user_event: str
    headers: tuple[tuple[str, str], ...] = ()

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
        h.add("UserEvent", self.user_event)
        for key, value in self.headers:
            if key.lower() in ("action", "actionid", "userevent"):
                raise UnsafeValueError(key, value)
            h.add(key, value)
        return h


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
