"""The safe alphabets of every identifier that can reach an MQTT topic or an AMI header (pure).

One place for them, documented in docs/mqtt.md ("Identifiers"). A command whose identifier is outside its
alphabet is refused with ``invalid`` before the engine sees it; the topic builder
(:mod:`callbridge.bus.topics`) accepts only :data:`TOPIC_LEVEL` parts. The alphabets are ASCII on
purpose: a broker drops the whole connection for a topic with a C1 control or a Unicode non-character
(mosquitto validates topics as MQTT UTF-8), and Asterisk headers are byte strings where look-alike or
invisible characters would only confuse people reading logs.

Free text (``summary``, ``reason``, hand-over values) is not an identifier: any Unicode text but
controls (C0 except tab/newline, DEL, C1), surrogates and non-characters, bounded in length.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from callbridge.dialplan.model import CATEGORY_PATTERN, DIGITS_PATTERN, NAME_PATTERN

#: Asterisk Linkedid / Uniqueid (``1790000000.17``, optionally ``<systemname>-1790000000.17``).
CALL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A hotline number, as the dialplan defines it (2-20 digits: 12345, 110, 119 ...).
HOTLINE = DIGITS_PATTERN
#: An agent: its endpoint (``agent1001``) or interface (``PJSIP/agent1001``).
AGENT = r"^(?:[A-Za-z][A-Za-z0-9]{0,15}/)?[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
#: Queue, mode and other dialplan names (the dialplan's ``Name``: ``q-12345``, ``night``).
NAME = NAME_PATTERN
#: A request category, as the dialplan defines it (``police``, ``non_police``).
CATEGORY = CATEGORY_PATTERN
#: A ticket id of the call-center software (``JD-2026-0001``, ``WO:2026/17``).
TICKET = r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$"
#: A caller's number in its normal form (``13800138000``, ``01012345678``, ``0014155550100``: digits only).
CALLER_NUM = r"^[0-9]{3,32}$"
#: Transfer ids (callbridge's 12 hex digits), idempotency keys, hand-over keys, correlation ids.
KEY = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
#: ``reply_to`` (it becomes the last level of ``<p>/reply/<reply_to>``).
REPLY_TO = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: An Asterisk channel name (``PJSIP/agent1001-00000004``, ``Local/2101@sim-0001;2``).
CHANNEL = r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+*#;-]{1,120}$"
#: One level of an MQTT topic built from data: no wildcard, no ``/``, no leading ``$``, ASCII only.
TOPIC_LEVEL = r"^[A-Za-z0-9_][A-Za-z0-9_.@:=~-]{0,127}$"

#: Non-characters: U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of every plane (escaped: the same pattern text
#: works in Python's ``re`` and in pydantic-core's regex engine).
_NONCHARS = r"\uFDD0-\uFDEF\uFFFE\uFFFF" + "".join(rf"\U{p:04X}FFFE\U{p:04X}FFFF" for p in range(1, 17))
#: Free text: no C0 control but tab/LF/CR, no DEL, no C1 control, no non-character. (Lone surrogates
#: never get this far: neither orjson nor pydantic accepts them.)
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + _NONCHARS + "]*$"
#: What a broker refuses in a topic (MQTT UTF-8 as mosquitto checks it): every control, every
#: non-character, surrogates.
BROKER_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff" + _NONCHARS + "]")

CallId = Annotated[str, Field(pattern=CALL_ID)]
HotlineId = Annotated[str, Field(pattern=HOTLINE)]
AgentId = Annotated[str, Field(pattern=AGENT)]
NameId = Annotated[str, Field(pattern=NAME)]
CategoryId = Annotated[str, Field(pattern=CATEGORY)]
TicketId = Annotated[str, Field(pattern=TICKET)]
CallerNum = Annotated[str, Field(pattern=CALLER_NUM)]
KeyId = Annotated[str, Field(pattern=KEY)]
ReplyTo = Annotated[str, Field(pattern=REPLY_TO)]
#: Free text of a summary (Chinese and every script welcome).
Text = Annotated[str, Field(max_length=4000, pattern=TEXT_PATTERN)]
#: A short free-text reason.
Reason = Annotated[str, Field(max_length=500, pattern=TEXT_PATTERN)]

_TOPIC_LEVEL = re.compile(TOPIC_LEVEL)


def is_topic_level(value: str) -> bool:
    """``value`` may be one level of a topic (see :data:`TOPIC_LEVEL`)."""
    return _TOPIC_LEVEL.fullmatch(value) is not None


def broker_safe(value: str) -> bool:
    """No character a broker drops the connection for (a last check before bytes go out)."""
    return BROKER_FORBIDDEN.search(value) is None
