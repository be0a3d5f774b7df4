"""The transfers the engine follows and the steps that move one, each published as its domain event.

:class:`TransferSteps` holds the unfinished transfers (what every PBX fact is matched against) and the
steps of a transfer's state machine — ringing, answered (with the number-carrying check), a line failed
(→ backup line), failed, returned, closed. It does not know which PBX fact means which step: that is
:class:`callbridge.engine.observe.Observer`, built on this class. Pure: no I/O, no asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from callbridge.calls.numbers import CHINA
from callbridge.engine import events as ev
from callbridge.engine import transfer as tx
from callbridge.engine.transfer import Transfer, TState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from callbridge.ami import event_types as ami
    from callbridge.ami.actions import Action
    from callbridge.domain import DomainEvent
    from callbridge.engine.effects import Effect

# the observer's logger: the same log lines as before the steps had their own module
log = structlog.get_logger("callbridge.engine.observe")

S = TState


class TransferSteps:
    """The transfers in flight and the steps that move them; the engine provides ``publish`` and ``send``."""

    def __init__(self) -> None:
        self.out: list[Effect] = []
        self.transfers: dict[str, Transfer] = {}  # recent transfers, finished ones kept for status/idempotency
        self._live: dict[str, Transfer] = {}  # unfinished ones: what every PBX event is matched against

    # provided by the engine
    def publish(self, event: DomainEvent) -> None:
        raise NotImplementedError

    def send(self, actions: Sequence[Action], tag: str = "") -> None:
        raise NotImplementedError

    # --- finding a transfer -------------------------------------------------------------------------

    def active(self) -> list[Transfer]:
        for done in [tid for tid, t in self._live.items() if t.done]:
            del self._live[done]
        return list(self._live.values())

    def active_on_call(self, call_id: str) -> Transfer | None:
        return next((t for t in self.active() if t.call_id == call_id), None)

    def _by_channel(self, channel: str) -> Transfer | None:
        if not channel:
            return None
        return next((t for t in self.active() if channel in (t.caller_channel, t.route_channel, t.dest_channel)), None)

    def _by_leg(self, uniqueid: str, *, finished: bool = False) -> tuple[Transfer, int] | None:
        """The three-way transfer that originated this leg (``ChannelId`` ``<id>-leg<n>``)."""
        base, sep, index = uniqueid.rpartition("-leg")
        t = self.transfers.get(base) if sep else None
        if t is None or (t.done and not finished) or not index.isdigit():
            return None
        return t, int(index)

    # --- steps --------------------------------------------------------------------------------------

    def _fail(self, t: Transfer, reason: str, now: float) -> None:
        tx.move(t, S.FAILED, now, reason)
        self.publish(t.event(ev.TransferFailed, now, reason=reason))

    def _returned(self, t: Transfer, reason: str, now: float) -> None:
        tx.move(t, S.RETURNED, now, reason)
        self.publish(t.event(ev.TransferReturned, now, reason=reason))

    def _ringing(self, t: Transfer, line: str, dest: ami.ChannelSnapshot | None, now: float) -> None:
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if dest is not None:
            t.dest_channel = dest.channel
        if t.line == line and t.state is S.RINGING:
            return
        t.line = line
        tx.move(t, S.RINGING, now, line)
        presented = (dest.connected_num or dest.caller_num) if dest is not None else ""
        self.publish(t.event(ev.TransferRinging, now, connected_num=presented))
        if dest is not None:
            self._verify(t, dest, now)

    def _answered(self, t: Transfer, dest: ami.ChannelSnapshot | None, now: float) -> None:
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if dest is not None:
            t.dest_channel = dest.channel
        tx.move(t, S.ANSWERED, now, t.line)
        self.publish(t.event(ev.TransferAnswered, now, answered_by=t.dest_channel))
        if dest is not None and not t.number_checked:
            self._verify(t, dest, now)

    def _verify(self, t: Transfer, dest: ami.ChannelSnapshot, now: float) -> None:
        """Number carrying is checked, never assumed: the far end is shown ConnectedLineNum."""
        if not t.verify or t.number_checked:
            return
        t.number_checked = True
        presented = dest.connected_num or dest.caller_num
        # like with like: the tracker's caller_num is normalised, a trunk may present +86…/0086…/0…
        if CHINA.normalise(presented) == CHINA.normalise(t.caller_num):
            self.publish(t.event(ev.TransferNumberVerified, now, presented_num=presented, channel=dest.channel))
        else:
            log.error("transfer.number_mismatch", transfer_id=t.id, expected=t.caller_num, presented=presented)
            self.publish(t.event(ev.TransferNumberMismatch, now, presented_num=presented, channel=dest.channel,
                                 reason="outbound leg does not present the caller's number"))  # fmt: skip

    def _line_failed(self, t: Transfer, line_no: int, reason: str, now: float) -> None:
        failed = t.lines[line_no - 1] if 0 < line_no <= len(t.lines) else t.line
        t.failures.append((failed, reason))
        t.last_failure = reason
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        backup = "backup_line" in t.rule.failure and line_no < len(t.lines)
        if backup:
            t.line = t.lines[line_no]
            t.number_checked = False  # the backup line is another trunk: its presented number is checked too
            self.publish(t.event(ev.TransferBackupLine, now, reason=reason, failed_line=failed))
        if t.state is S.RINGING:
            tx.move(t, S.ROUTING, now, f"line {line_no} {reason}")

    def _closed(self, t: Transfer, now: float) -> None:
        """Both sides of an answered transfer are gone: the two-sided close, under the transfer id."""
        tx.move(t, S.COMPLETED, now, "closed")
        self.publish(t.event(ev.TransferCompleted, now, reason="closed"))
