"""How a transfer follows the PBX: AMI events and action results move it through its state machine.

The rendered dialplan does the work on the Asterisk side (lines in order, back to the agent); the engine
observes and reports every step with its reason:

* ``UserEvent CallbridgeTarget`` (XferId) — the caller entered ``cb-to-``: the Redirect took effect;
* ``DialBegin`` / ``AgentCalled`` from the routing channel — the destination rings; the outbound leg's
  presented number (ConnectedLineNum, else CallerIDNum) is checked against the caller's number;
* ``DialEnd ANSWER`` / ``AgentConnect`` — answered; ``UserEvent CallbridgeLine`` — a line failed
  (busy, congestion, unreachable, noanswer) → backup line; ``UserEvent CallbridgeBack`` — returned;
* three-way: the originated leg (``ChannelId`` ``<id>-leg<n>``) joining the room, or its failed
  ``OriginateResponse`` → next line;
* ``Hangup`` — the caller hanging up ends the transfer cleanly; after an answer, both sides gone is the
  two-sided close (双边办结) of the transfer, reported under the transfer id.

The engine never hangs up a caller: a failure leaves the caller with the dialplan (back to the agent,
origin queue) or, in a three-way, in the room with the agent.

This module says which fact means which step; the steps themselves (and the published events) are
:mod:`callbridge.engine.steps`, the transfers in flight :mod:`callbridge.engine.transfers`, the
decisions after a resync :mod:`callbridge.engine.reconcile`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from callbridge.ami import event_types as ami
from callbridge.ami.actions import Hangup
from callbridge.engine import conference as conf
from callbridge.engine import events as ev
from callbridge.engine import handover
from callbridge.engine import transfer as tx
from callbridge.engine.steps import Steps, log
from callbridge.engine.transfer import Transfer, TState

if TYPE_CHECKING:
    from callbridge.engine.authz import CallView
    from callbridge.engine.effects import ActionResult, EffectSink
    from callbridge.engine.transfers import Transfers

S = TState
log_engine = structlog.get_logger("callbridge.engine")  # the engine's own line, as before the split

#: The state a transfer is in once the PBX took its start actions, per mode.
STARTED = {"blind": S.ROUTING, "attended": S.CONSULTING, "threeway": S.CONFERENCE}

def transfer_step(tag: str) -> tuple[str, str] | None:
    """``(transfer id, step)`` of a batch tagged ``xfer:<transfer id>:<step>``, else None (another kind)."""
    kind, _, rest = tag.partition(":")
    if kind != "xfer":
        return None
    transfer_id, _, step = rest.partition(":")
    return transfer_id, step


class Observer:
    """Which PBX fact or action result moves a transfer which step (the steps: :class:`Steps`)."""

    def __init__(self, transfers: Transfers, view: CallView, out: EffectSink) -> None:
        self.transfers = transfers
        self.view = view
        self.out = out
        self.steps = Steps(out)
        self._handlers: dict[type[ami.AmiEvent], Callable[[Any, float], None]] = {
            ami.UserEvent: self._user_event,
            ami.DialBegin: self._dial_begin,
            ami.DialState: self._dial_state,
            ami.DialEnd: self._dial_end,
            ami.AgentCalled: self._agent_called,
            ami.AgentConnect: self._agent_connect,
            ami.QueueCallerJoin: self._queue_join,
            ami.Newstate: self._leg_state,
            ami.ConfbridgeJoin: self._conf_join,
            ami.ConfbridgeLeave: self._conf_leave,
            ami.Unhold: self._unhold,
            ami.OriginateResponse: self._originate_response,
            ami.Hangup: self._hangup,
        }

    def _hang_up_late_leg(self, snap: ami.ChannelSnapshot) -> bool:
        """A leg still coming in after the hand-over was given up is hung up (caller and agent stay)."""
        found = self.transfers.by_leg(snap.uniqueid, finished=True)
        if found is None or found[0].state is not S.RETURNED or found[0].last_failure != handover.REASON:
            return False
        self.out.send((Hangup(channel=snap.channel, cause=16),), f"xfer:{found[0].id}:handover")
        return True

    # --- PBX events ---------------------------------------------------------------------------------

    def handles(self, cls: type[ami.AmiEvent]) -> bool:
        return cls in self._handlers

    def observe(self, event: ami.AmiEvent, now: float) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, now)

    def _user_event(self, e: ami.UserEvent, now: float) -> None:
        fields = dict(e.fields)
        t = self.transfers.get(fields.get("XferId", ""))
        if t is None or t.done:
            return
        name = e.user_event
        if name == "CallbridgeTarget":
            if e.snap is not None:
                t.route_channel = e.snap.channel
            if t.state in (S.SENDING, S.UNKNOWN):
                tx.move(t, S.ROUTING if t.mode == "blind" else S.CONSULTING, now, "in cb-to context")
        elif name == "CallbridgeLine":
            status = fields.get("Status", "").upper()
            if status and status != "ANSWER":
                reason = tx.QUEUE_FAILURES.get(status) or tx.dial_failure_reason(status)
                if reason == "noanswer" and t.rang is False:
                    # Asterisk reports SIP timer B (no reply at all: 408, cause 18) as NOANSWER too; a leg seen
                    # dialled that never rang had nobody to ring: the line is unreachable (live PBX, issue 15).
                    # Not known (dialled before a restart): NOANSWER stays no answer.
                    reason = "unreachable"
                line_no = int(fields.get("Line", "1") or 1)
                self.steps.line_failed(t, line_no, reason, now)
        elif name == "CallbridgeExpert":
            status = fields.get("Status", "").upper()
            t.last_failure = tx.QUEUE_FAILURES.get(status, status.lower() or "failed")
        elif name == "CallbridgeBack" and t.state is not S.ANSWERED:
            self.steps.returned(t, t.last_failure or "failed", now)

    def _dial_begin(self, e: ami.DialBegin, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel) if e.snap is not None else None
        if t is None or t.mode == "threeway" or e.snap is None:
            return
        if e.snap.channel not in (t.caller_channel, t.route_channel):
            return
        t.rang = False  # a new line is dialled: DialState says whether it rings
        self.steps.ringing(t, _line_of(t, e.dial_string), e.dest, now)

    def _dial_state(self, e: ami.DialState, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel) if e.snap is not None else None
        if t is not None and e.dest.channel == t.dest_channel and e.dial_status in ("RINGING", "PROGRESS"):
            t.rang = True

    def _dial_end(self, e: ami.DialEnd, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel) if e.snap is not None else None
        if t is None or t.mode == "threeway" or e.snap is None or e.dest.channel != t.dest_channel:
            return
        if e.dial_status == "ANSWER":
            self.steps.answered(t, e.dest, now)

    def _agent_called(self, e: ami.AgentCalled, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel)
        if t is not None and e.snap.channel in (t.caller_channel, t.route_channel) and t.mode != "threeway":
            if t.priority is not None and t.state is not S.RINGING:
                self.steps.priority_set(t, e.queue, now)
            self.steps.ringing(t, e.queue, e.dest, now)

    def _agent_connect(self, e: ami.AgentConnect, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel)
        if t is not None and e.snap.channel in (t.caller_channel, t.route_channel) and t.mode != "threeway":
            self.steps.answered(t, e.dest, now)

    def _queue_join(self, e: ami.QueueCallerJoin, now: float) -> None:
        t = self.transfers.by_channel(e.snap.channel)
        if t is not None and t.priority is not None and t.state in (S.SENDING, S.UNKNOWN, S.ROUTING, S.CONSULTING):
            t.line = e.queue
            self.steps.priority_set(t, e.queue, now)

    def _leg_state(self, e: ami.Newstate, now: float) -> None:
        """The called-in leg rings (Newstate, not Newchannel: its caller ID is set only after creation)."""
        if e.snap.state_desc in ("Ringing", "Up") and self._hang_up_late_leg(e.snap):
            return
        found = self.transfers.by_leg(e.snap.uniqueid)
        if found is not None and found[1] == found[0].originate_index and e.snap.state_desc in ("Ringing", "Up"):
            t, index = found
            self.steps.ringing(t, conf.destination_lines(t)[index], e.snap, now)

    def _conf_join(self, e: ami.ConfbridgeJoin, now: float) -> None:
        found = self.transfers.by_leg(e.snap.uniqueid)
        if found is None:
            self._hang_up_late_leg(e.snap)
            return
        t, _ = found
        if e.conference == t.room:
            self.steps.answered(t, e.snap, now)
            if t.rule.agent_leaves and not t.agent_left:
                self.out.send(conf.leave_room(t), f"xfer:{t.id}:leave")

    def _originate_response(self, e: ami.OriginateResponse, now: float) -> None:
        found = self.transfers.by_leg(e.uniqueid)
        if found is None or e.response != "Failure":
            return
        t, index = found
        if index != t.originate_index or t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if e.reason == 0:  # no reason given (Asterisk 22 even for a busy leg): the leg's Hangup cause says more
            if index in t.leg_causes:
                self.steps.call_in_failed(t, index, _cause_reason(t.leg_causes[index]), now)
            elif self.view.channel(e.uniqueid) is not None:
                t.pending_leg = index  # the leg exists: its Hangup (e.g. Cause 17 busy) follows
            else:
                self.steps.call_in_failed(t, index, conf.originate_reason(e.reason), now)  # never existed
            return
        self.steps.call_in_failed(t, index, conf.originate_reason(e.reason), now)

    def _leg_hangup(self, e: ami.Hangup, now: float) -> bool:
        """Remember a three-way leg's hang-up cause; decide a failure its Originate left open."""
        found = self.transfers.by_leg(e.snap.uniqueid)
        if found is None:
            return False
        t, index = found
        if e.cause not in (None, 16):
            t.leg_causes[index] = e.cause
        if t.pending_leg != index:
            return False
        t.pending_leg = None
        if index == t.originate_index and t.state not in (S.ANSWERED, *tx.TERMINAL):
            self.steps.call_in_failed(t, index, _cause_reason(e.cause), now)
        return True

    def _hangup(self, e: ami.Hangup, now: float) -> None:
        name = e.snap.channel
        if self._leg_hangup(e, now):
            return
        for t in self.transfers.active():
            if name == t.caller_channel:
                t.caller_gone = True
                if t.state is S.ANSWERED:
                    if t.dest_gone or not t.dest_channel or t.mode == "threeway":
                        self.steps.closed(t, now)
                else:
                    self.steps.fail(t, "caller_hangup", now)
            elif name == t.dest_channel:
                t.dest_gone = True
                if t.state is S.ANSWERED and t.caller_gone:
                    self.steps.closed(t, now)
                elif t.mode == "threeway" and t.state is S.RINGING:
                    found = self.transfers.by_leg(e.snap.uniqueid)
                    if found is not None and found[1] == t.originate_index and e.cause not in (None, 16):
                        self.steps.call_in_failed(t, found[1], tx.dial_failure_reason(tx.cause_status(e.cause)), now)
            elif name == t.route_channel and t.mode == "attended" and not t.caller_gone and (
                self.view.channel(t.agent_channel) is not None
            ):  # the consultation ended, not completed (the agent is still there): Asterisk gives the caller
                self.steps.returned(t, t.last_failure or "back_to_agent", now)  # back (a cancel's lost reply too)
            elif name == t.agent_channel and t.mode == "attended" and t.state is S.ANSWERED:
                log.info("transfer.attended_completed", transfer_id=t.id)

    def _unhold(self, e: ami.Unhold, now: float) -> None:
        """The agent is taken off hold while consulting and no consultation leg ever entered the target
        context: Asterisk's attended-transfer feature gave up (no target digits). The agent is back with
        the caller; the transfer failed (a later ``complete`` would hang the agent up on the caller)."""
        for t in self.transfers.active():
            if t.mode == "attended" and e.snap.channel == t.agent_channel and not t.route_channel and t.state in (
                S.SENDING, S.CONSULTING,
            ):
                self.steps.fail(t, "no_consultation", now)

    def _conf_leave(self, e: ami.ConfbridgeLeave, now: float) -> None:
        for t in self.transfers.active():
            if t.room == e.conference and e.snap.channel == t.agent_channel and not t.agent_left:
                t.agent_left = True
                self.out.publish(t.event(ev.ThreewayAgentLeft, now, room=t.room))

    # --- action results -----------------------------------------------------------------------------

    def on_action_result(self, result: ActionResult, now: float) -> None:
        """The outcome of a batch the engine sent (tag ``xfer:<transfer id>:<step>``, or another kind)."""
        found = transfer_step(result.tag)
        if found is None:
            if result.outcome != "ok":
                log_engine.warning("engine.action_failed", tag=result.tag, outcome=result.outcome, error=result.error)
            return
        transfer_id, step = found
        t = self.transfers.get(transfer_id)
        if t is not None and not t.done:
            self._step_result(t, step, result, now)

    def _step_result(self, t: Transfer, step: str, r: ActionResult, now: float) -> None:
        if step == "start":
            self._start_result(t, r, now)
        elif step == "originate" and r.outcome in ("failed", "unavailable"):
            self.steps.call_in_failed(t, t.originate_index, "ami_error", now)
        elif step == "cancel" and r.outcome == "ok":
            self.steps.returned(t, "cancelled", now)
        elif step == "complete" and r.outcome == "ok":
            # the transferer hung up: Asterisk joins caller and destination (AttendedTransfer)
            self.steps.answered(t, None, now)
        elif r.outcome != "ok":
            log.warning("transfer.step_failed", transfer_id=t.id, step=step, outcome=r.outcome, error=r.error)

    def _start_result(self, t: Transfer, r: ActionResult, now: float) -> None:
        if r.outcome == "ok":
            if t.state in (S.SENDING, S.UNKNOWN):
                tx.move(t, STARTED[t.mode], now, "actions accepted")
            if t.mode == "threeway":
                self.steps.room_ready(t, now)
        elif r.outcome == "unknown":
            tx.move(t, S.UNKNOWN, now, r.error)
        elif t.state in (S.SENDING, S.UNKNOWN):
            self.steps.fail(t, f"ami_{r.outcome}: {r.error}".rstrip(": "), now)

    def handover_expired(self, transfer_id: str, now: float) -> None:
        """The hand-over deadline passed (see :mod:`callbridge.engine.handover`)."""
        t = self.transfers.get(transfer_id)
        if t is None:
            return
        verdict = handover.verdict(t)
        log.info("threeway.handover_timeout", transfer_id=t.id, state=t.state.value, verdict=verdict)
        if verdict == "kick_agent":
            self.out.send(conf.leave_room(t), f"xfer:{t.id}:leave")
        elif verdict == "give_up":
            leg = t.dest_channel
            self.steps.returned(t, handover.REASON, now)  # first: no backup line is called in after this
            t.last_failure = handover.REASON
            if leg:
                self.out.send((Hangup(channel=leg, cause=16),), f"xfer:{t.id}:handover")


def _line_of(t: Transfer, dial_string: str) -> str:
    """DialBegin's DialString (``110@hotline-110``: Asterisk drops the technology) as the transfer's line
    (``PJSIP/110@hotline-110``), so every event of a transfer names a line the same way."""
    return next((line for line in t.lines if line == dial_string or line.partition("/")[2] == dial_string),
                dial_string)


def _cause_reason(cause: int | None) -> str:
    """Q.850 cause of a failed leg → failure reason (17 busy, 18/19 noanswer, 34 congestion, else unreachable)."""
    return tx.dial_failure_reason(tx.cause_status(cause))

