"""Typed AMI actions of the session and of PBX status: login (plain or MD5), events mask, keepalive, logoff,
and the status/list queries (CoreShowChannels, BridgeList, BridgeInfo, CoreSettings, CoreStatus).

These are mostly what the client sends on its own behalf (login, keepalive, resync). One family of the
:mod:`callbridge.ami.actions` catalogue (import the actions from there).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar

from .base import Action, HeaderBuilder, hdr

# --- session ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Action):
    """Plain login (``secret``) or MD5 login (``key`` = :func:`md5_key` of a Challenge)."""

    name: ClassVar[str] = "Login"
    username: str
    secret: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    events: str = "on"

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
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
