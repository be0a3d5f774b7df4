"""Reply values the action handlers return to the AMI server (sans-IO)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Headers = list[tuple[str, str]]


@dataclass(slots=True)
class Reply:
    """Frames answering one action, in order; ``close`` ends the session after writing them."""

    frames: list[Headers] = field(default_factory=list)
    close: bool = False


class Deferred:
    """A reply that is known later (synchronous Originate waits for the outcome)."""

    __slots__ = ("_callbacks", "reply")

    def __init__(self) -> None:
        self.reply: Reply | None = None
        self._callbacks: list[Callable[[Reply], None]] = []

    def resolve(self, reply: Reply) -> None:
        if self.reply is not None:
            return
        self.reply = reply
        for cb in self._callbacks:
            cb(reply)

    def add_callback(self, cb: Callable[[Reply], None]) -> None:
        if self.reply is not None:
            cb(self.reply)
        else:
            self._callbacks.append(cb)


def success(message: str = "", *extra: tuple[str, str]) -> Reply:
    frame: Headers = [("Response", "Success")]
    if message:
        frame.append(("Message", message))
    frame.extend(extra)
    return Reply([frame])


def error(message: str) -> Reply:
    return Reply([[("Response", "Error"), ("Message", message)]])


def listing(message: str, items: list[Headers], complete: str, *tail: tuple[str, str]) -> Reply:
    """Asterisk's list framing: Success + ``EventList: start``, the items, then ``…Complete``."""
    head: Headers = [("Response", "Success"), ("EventList", "start"), ("Message", message)]
    done: Headers = [("Event", complete), ("EventList", "Complete"), ("ListItems", str(len(items))), *tail]
    return Reply([head, *items, done])
