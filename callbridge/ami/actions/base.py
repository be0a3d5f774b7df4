"""The machinery of the typed AMI actions: the :class:`Action` base, :func:`hdr` field declarations and the
header builder that checks every header.

Kept apart from the action families (``session``, ``call``, ``queue``) because all of them build on it;
import the actions from :mod:`callbridge.ami.actions`.

Why typed: the rest of the code never builds header strings, so a caller-controlled value (a caller
name, a ticket number) can only ever land in the value slot it was meant for, and every header goes
through :func:`callbridge.ami.framing.check_header` (CR, LF and other control characters refused).
``to_headers()`` returns ``[("Action", name), ...]``; the client inserts the ``ActionID``.

Booleans are rendered the way the Asterisk documentation (and the recorded traces) write them for
each action: ``Async: true``, ``Paused: true|false``, ``Immediate: yes``, ``Receive: yes``.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

from callbridge.ami.framing import check_header

Header = tuple[str, str]


def truefalse(value: bool) -> str:
    return "true" if value else "false"


def yesno(value: bool) -> str:
    return "yes" if value else "no"


class HeaderBuilder:
    """Small builder: skips unset optional values, renders ints, checks every header."""

    __slots__ = ("items",)

    def __init__(self, action: str) -> None:
        self.items: list[Header] = [("Action", action)]

    def add(self, name: str, value: str | int | None) -> HeaderBuilder:
        if value is None:
            return self
        # bool is an int subclass; booleans are rendered by the field's style, never as "True".
        assert not isinstance(value, bool), f"{name}: render booleans with truefalse/yesno"
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
    other (Originate, Redirect, Login…) override ``add_headers``.
    """

    name: ClassVar[str] = ""

    def to_headers(self) -> list[Header]:
        return self.add_headers(HeaderBuilder(self.name)).items

    def add_headers(self, h: HeaderBuilder) -> HeaderBuilder:
        for f in fields(self):
            header = f.metadata.get("header")
            value = getattr(self, f.name)
            if header is None or value is None:
                continue
            if isinstance(value, bool):
                value = yesno(value) if f.metadata["bools"] == "yesno" else truefalse(value)
            h.add(header, value)
        return h
