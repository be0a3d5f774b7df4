"""The steps that move a transfer through its state machine, each published as its domain event (pure).

Ringing, answered (with the number-carrying check), a line failed (→ backup line), failed, returned,
closed; for a three-way: the room ready, a line called in, a call-in failed (→ next line). Which PBX
fact means which step is :mod:`callbridge.engine.observe`; the steps write to the engine's
:class:`~callbridge.engine.effects.EffectSink` and know nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from callbridge.calls.numbers import CHINA
from callbridge.engine import conference as conf
from callbridge.engine import events as ev
from callbridge.engine import handover
from callbridge.engine import transfer as tx
from callbridge.engine.transfer import Transfer, TState

if TYPE_CHECKING:
    from callbridge.ami.event_types import ChannelSnapshot
    from callbridge.engine.effects import EffectSink

# the observer's logger: the same log lines as before the steps had their own module
log = structlog.get_logger("callbridge.engine.observe")

S = TState


class Steps:
    """The steps of one transfer, written as effects to ``out``."""

    __slots__ = ("out",)

    def __init__(self, out: EffectSink) -> None:
        self.out = out

    def fail(self, t: Transfer, reason: str, now: float) -> None:
        tx.move(t, S.FAILED, now, reason)
        self.out.publish(t.event(ev.TransferFailed, now, reason=reason))

    def returned(self, t: Transfer, reason: str, now: float) -> None:
        tx.move(t, S.RETURNED, now, reason)
        self.out.publish(t.event(ev.TransferReturned, now, reason=reason))

    def ringing(self, t: Transfer, line: str, dest: ChannelSnapshot | None, now: float) -> None:
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if dest is not None:
            t.dest_channel = dest.channel
        if t.line == line and t.state is S.RINGING:
            return
        t.line = line
        tx.move(t, S.RINGING, now, line)
        presented = (dest.connected_num or dest.caller_num) if dest is not None else ""
        self.out.publish(t.event(ev.TransferRinging, now, connected_num=presented))
        if dest is not None:
            self.verify(t, dest, now)

    def answered(self, t: Transfer, dest: ChannelSnapshot | None, now: float) -> None:
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if dest is not None:
            t.dest_channel = dest.channel
        tx.move(t, S.ANSWERED, now, t.line)
        self.out.publish(t.event(ev.TransferAnswered, now, answered_by=t.dest_channel))
        if dest is not None and not t.number_checked:
            self.verify(t, dest, now)

    def verify(self, t: Transfer, dest: ChannelSnapshot, now: float) -> None:
        """Number carrying is checked, never assumed: the far end is shown ConnectedLineNum."""
        if not t.verify or t.number_checked:
            return
        t.number_checked = True
        presented = dest.connected_num or dest.caller_num
        # like with like: the tracker's caller_num is normalised, a trunk may present +86…/0086…/0…
        if CHINA.normalise(presented) == CHINA.normalise(t.caller_num):
            self.out.publish(t.event(ev.TransferNumberVerified, now, presented_num=presented, channel=dest.channel))
        else:
            log.error("transfer.number_mismatch", transfer_id=t.id, expected=t.caller_num, presented=presented)
            self.out.publish(t.event(ev.TransferNumberMismatch, now, presented_num=presented, channel=dest.channel,
                                     reason="outbound leg does not present the caller's number"))  # fmt: skip

    def line_failed(self, t: Transfer, line_no: int, reason: str, now: float) -> None:
        failed = t.lines[line_no - 1] if 0 < line_no <= len(t.lines) else t.line
        t.failures.append((failed, reason))
        t.last_failure = reason
        if t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if "backup_line" in t.rule.failure and line_no < len(t.lines):
            t.line = t.lines[line_no]
            t.number_checked = False  # the backup line is another trunk: its presented number is checked too
            self.out.publish(t.event(ev.TransferBackupLine, now, reason=reason, failed_line=failed))
        if t.state is S.RINGING:
            tx.move(t, S.ROUTING, now, f"line {line_no} {reason}")

    def closed(self, t: Transfer, now: float) -> None:
        """Both sides of an answered transfer are gone: the two-sided close, under the transfer id."""
        tx.move(t, S.COMPLETED, now, "closed")
        self.out.publish(t.event(ev.TransferCompleted, now, reason="closed"))

    def priority_set(self, t: Transfer, queue: str, now: float) -> None:
        """An expert transfer's caller is in the destination queue with its priority (told once)."""
        if any(h[3] == "priority" for h in t.history):
            return
        t.history.append((now, t.state.value, t.state.value, "priority"))
        self.out.publish(ev.QueuePrioritySet(ts=now, call_id=t.call_id, hotline=t.to_hotline, queue=queue,
                                             priority=t.priority or 0, caller_num=t.caller_num,
                                             channel=t.caller_channel, transfer_id=t.id, category=t.category,
                                             reason=f"expert transfer from {t.from_hotline}"))  # fmt: skip

    # --- three-way ----------------------------------------------------------------------------------

    def room_ready(self, t: Transfer, now: float) -> None:
        """Caller and agent are in the room: call the destination in, arm the hand-over deadline."""
        self.out.publish(t.event(ev.ThreewayStarted, now, room=t.room))
        self.call_in(t, t.originate_index, now)
        if t.handover_timeout > 0:
            self.out.start_timer(handover.timer_key(t.id), t.handover_timeout)

    def call_in(self, t: Transfer, index: int, now: float) -> None:
        """Originate line ``index`` into the room, announced first: the leg becomes a call of its own at the
        PBX (its own Linkedid), and the event tells the records and the wallboard — which receive it before
        anything of that leg — that this call is the transfer's leg, not a citizen calling the hotline."""
        line = conf.destination_lines(t)[index]
        self.out.publish(t.event(ev.ThreewayLegCalled, now, line=line, room=t.room,
                                 leg_call_id=conf.leg_id(t, index)))  # fmt: skip
        self.out.send((conf.call_in(t, index),), f"xfer:{t.id}:originate")

    def call_in_failed(self, t: Transfer, index: int, reason: str, now: float) -> None:
        lines = conf.destination_lines(t)
        t.failures.append((lines[index], reason))
        t.last_failure = reason
        if "backup_line" in t.rule.failure and index + 1 < len(lines):
            t.originate_index = index + 1
            t.line = lines[index + 1]
            self.out.publish(t.event(ev.TransferBackupLine, now, reason=reason, failed_line=lines[index]))
            if t.state is S.RINGING:
                tx.move(t, S.CONFERENCE, now, f"line {index + 1} {reason}")
            self.call_in(t, index + 1, now)
        else:
            # caller and agent stay together in the room: that is "back to the agent" for a three-way
            self.returned(t, reason, now)
