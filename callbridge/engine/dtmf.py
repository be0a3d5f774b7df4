"""One-key codes from DTMF digits: a digit buffer per agent channel with an inter-digit timeout.

Codes are ``*``/``#`` followed by 1-3 digits and no code is a prefix of another one of the same hotline
(``callbridge check`` refuses that), so a buffer either matches a code, is a prefix of one (wait for the
next digit), or is noise (dropped; the digit may start a new code).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from callbridge.engine.authz import agent_name, interface_of
from callbridge.engine.requests import TransferRequest

if TYPE_CHECKING:
    from callbridge.calls.events import CallDtmf
    from callbridge.dialplan.plan import Dialplan
    from callbridge.engine.effects import EffectSink

log = structlog.get_logger("callbridge.engine")

#: The kind of the inter-digit timers (``dtmf:<channel>``).
TIMER_KIND = "dtmf"


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


class OneKeys:
    """Agents' DTMF digits → one-key transfer requests, under the current dialplan and mode.

    Arms and cancels the inter-digit timer (``dtmf:<channel>``) through ``out``; the codes of a hotline
    are computed once per dialplan and mode (the one-key path is latency-critical).
    """

    __slots__ = ("_codes", "_codes_plan", "digits", "out")

    def __init__(self, out: EffectSink) -> None:
        self.out = out
        self.digits = DigitBuffers()
        self._codes: dict[tuple[str, str], frozenset[str]] = {}
        self._codes_plan: Dialplan | None = None  # the plan the cache was filled from

    def on_digit(self, d: CallDtmf, plan: Dialplan, mode: str, timeout: float) -> TransferRequest | None:
        """The request a completed code makes (None: the caller's digit, no code yet, or noise)."""
        if d.party == "caller" or not d.call_id:
            return None
        interface = interface_of(d.channel)
        hotline = plan.hotline_of_agent(interface)
        if hotline is None:
            return None
        result = self.digits.press(d.channel, d.digit, self.codes(plan, hotline.number, mode))
        key = f"{TIMER_KIND}:{d.channel}"
        if result.waiting:
            self.out.start_timer(key, timeout)
            return None
        self.out.cancel_timer(key)
        if result.code is None:
            return None
        # written after the transfer's first action (Log effect): this is the one-key latency path
        self.out.log_later("dtmf.code", channel=d.channel, code=result.code, call_id=d.call_id)
        return TransferRequest(call_id=d.call_id, agent=agent_name(interface), code=result.code, source="dtmf",
                               agent_channel=d.channel)  # fmt: skip

    def expired(self, channel: str) -> None:
        """The inter-digit timer of ``channel`` fired: the partial code is dropped."""
        log.info("dtmf.timeout", channel=channel, dropped=self.digits.expire(channel))

    def codes(self, plan: Dialplan, hotline: str, mode: str) -> frozenset[str]:
        """The hotline's one-key codes in ``mode``, computed once per dialplan and mode."""
        if self._codes_plan is not plan:  # a reload (or a test) swapped the plan
            self._codes.clear()
            self._codes_plan = plan
        key = (hotline, mode)
        codes = self._codes.get(key)
        if codes is None:
            codes = self._codes[key] = plan.codes_for(hotline, mode)
        return codes
