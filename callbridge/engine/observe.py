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

This module says which fact means which step; the steps themselves (and the published events) and the
transfers in flight are :mod:`callbridge.engine.transfer_steps`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callbridge.ami import event_types as ami
from callbridge.ami.actions import Hangup
from callbridge.ami.event_types import endpoint_of
from callbridge.engine import conference as conf
from callbridge.engine import events as ev
from callbridge.engine import handover
from callbridge.engine import transfer as tx
from callbridge.engine.authz import same_agent
from callbridge.engine.effects import ActionResult, StartTimer
from callbridge.engine.transfer import Transfer
from callbridge.engine.transfer_steps import S, TransferSteps, log

if TYPE_CHECKING:
    from callbridge.engine.authz import CallView

__all__ = ["KEEP_FINISHED", "Observer", "S", "TransferSteps", "log"]

#: Finished transfers kept for ``status`` and idempotent repeats (the records store keeps them for good).
KEEP_FINISHED = 5000


class Observer(TransferSteps):
    """Base of :class:`callbridge.engine.runtime.Engine`: which PBX fact or action result moves a transfer
    which step (the steps themselves and the transfers in flight: :class:`TransferSteps`)."""

    view: CallView

    # --- book-keeping -------------------------------------------------------------------------------

    def add(self, t: Transfer) -> None:
        self.transfers[t.id] = t
        self._live[t.id] = t
        while len(self.transfers) > KEEP_FINISHED:  # oldest first (insertion order); never an unfinished one
            oldest = next(iter(self.transfers.values()))
            if not oldest.done:
                break
            self.forget(oldest)

    def forget(self, t: Transfer) -> None:
        del self.transfers[t.id]

    def _hang_up_late_leg(self, snap: ami.ChannelSnapshot) -> bool:
        """A leg still coming in after the hand-over was given up is hung up (caller and agent stay)."""
        found = self._by_leg(snap.uniqueid, finished=True)
        if found is None or found[0].state is not S.RETURNED or found[0].last_failure != handover.REASON:
            return False
        self.send((Hangup(channel=snap.channel, cause=16),), f"xfer:{found[0].id}:handover")
        return True

    # --- PBX events ---------------------------------------------------------------------------------

    def observe(self, event: ami.AmiEvent, now: float) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, now)

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
                line_no = int(fields.get("Line", "1") or 1)
                self._line_failed(t, line_no, reason, now)
        elif name == "CallbridgeExpert":
            status = fields.get("Status", "").upper()
            t.last_failure = tx.QUEUE_FAILURES.get(status, status.lower() or "failed")
        elif name == "CallbridgeBack" and t.state is not S.ANSWERED:
            self._returned(t, t.last_failure or "failed", now)

    def _dial_begin(self, e: ami.DialBegin, now: float) -> None:
        t = self._by_channel(e.snap.channel) if e.snap is not None else None
        if t is None or t.mode == "threeway" or e.snap is None:
            return
        if e.snap.channel not in (t.caller_channel, t.route_channel):
            return
        self._ringing(t, _line_of(t, e.dial_string), e.dest, now)

    def _dial_end(self, e: ami.DialEnd, now: float) -> None:
        t = self._by_channel(e.snap.channel) if e.snap is not None else None
        if t is None or t.mode == "threeway" or e.snap is None or e.dest.channel != t.dest_channel:
            return
        if e.dial_status == "ANSWER":
            self._answered(t, e.dest, now)

    def _agent_called(self, e: ami.AgentCalled, now: float) -> None:
        t = self._by_channel(e.snap.channel)
        if t is not None and e.snap.channel in (t.caller_channel, t.route_channel) and t.mode != "threeway":
            if t.priority is not None and t.state is not S.RINGING:
                self._priority_set(t, e.queue, now)
            self._ringing(t, e.queue, e.dest, now)

    def _agent_connect(self, e: ami.AgentConnect, now: float) -> None:
        t = self._by_channel(e.snap.channel)
        if t is not None and e.snap.channel in (t.caller_channel, t.route_channel) and t.mode != "threeway":
            self._answered(t, e.dest, now)

    def _queue_join(self, e: ami.QueueCallerJoin, now: float) -> None:
        t = self._by_channel(e.snap.channel)
        if t is not None and t.priority is not None and t.state in (S.SENDING, S.UNKNOWN, S.ROUTING, S.CONSULTING):
            t.line = e.queue
            self._priority_set(t, e.queue, now)

    def _priority_set(self, t: Transfer, queue: str, now: float) -> None:
        if any(h[3] == "priority" for h in t.history):
            return
        t.history.append((now, t.state.value, t.state.value, "priority"))
        self.publish(ev.QueuePrioritySet(ts=now, call_id=t.call_id, hotline=t.to_hotline, queue=queue,
                                         priority=t.priority or 0, caller_num=t.caller_num,
                                         channel=t.caller_channel, transfer_id=t.id, category=t.category,
                                         reason=f"expert transfer from {t.from_hotline}"))  # fmt: skip

    # three-way ---------------------------------------------------------------------------------------

    def _leg_state(self, e: ami.Newstate, now: float) -> None:
        """The called-in leg rings (Newstate, not Newchannel: its caller ID is set only after creation)."""
        if e.snap.state_desc in ("Ringing", "Up") and self._hang_up_late_leg(e.snap):
            return
        found = self._by_leg(e.snap.uniqueid)
        if found is not None and found[1] == found[0].originate_index and e.snap.state_desc in ("Ringing", "Up"):
            t, index = found
            self._ringing(t, conf.destination_lines(t)[index], e.snap, now)

    def _conf_join(self, e: ami.ConfbridgeJoin, now: float) -> None:
        found = self._by_leg(e.snap.uniqueid)
        if found is None:
            self._hang_up_late_leg(e.snap)
            return
        t, _ = found
        if e.conference == t.room:
            self._answered(t, e.snap, now)
            if t.rule.agent_leaves and not t.agent_left:
                self.send(conf.leave_room(t), f"xfer:{t.id}:leave")

    def _originate_response(self, e: ami.OriginateResponse, now: float) -> None:
        found = self._by_leg(e.uniqueid)
        if found is None or e.response != "Failure":
            return
        t, index = found
        if index != t.originate_index or t.state in (S.ANSWERED, *tx.TERMINAL):
            return
        if e.reason == 0:  # no reason given (Asterisk 22 even for a busy leg): the leg's Hangup cause says more
            if index in t.leg_causes:
                self._call_in_failed(t, index, _cause_reason(t.leg_causes[index]), now)
            elif self.view.channel(e.uniqueid) is not None:
                t.pending_leg = index  # the leg exists: its Hangup (e.g. Cause 17 busy) follows
            else:
                self._call_in_failed(t, index, conf.originate_reason(e.reason), now)  # never existed
            return
        self._call_in_failed(t, index, conf.originate_reason(e.reason), now)

    def _leg_hangup(self, e: ami.Hangup, now: float) -> bool:
        """Remember a three-way leg's hang-up cause; decide a failure its Originate left open."""
        found = self._by_leg(e.snap.uniqueid)
        if found is None:
            return False
        t, index = found
        if e.cause not in (None, 16):
            t.leg_causes[index] = e.cause
        if t.pending_leg != index:
            return False
        t.pending_leg = None
        if index == t.originate_index and t.state not in (S.ANSWERED, *tx.TERMINAL):
            self._call_in_failed(t, index, _cause_reason(e.cause), now)
        return True

    def _call_in_failed(self, t: Transfer, index: int, reason: str, now: float) -> None:
        lines = conf.destination_lines(t)
        t.failures.append((lines[index], reason))
        t.last_failure = reason
        if "backup_line" in t.rule.failure and index + 1 < len(lines):
            t.originate_index = index + 1
            t.line = lines[index + 1]
            self.publish(t.event(ev.TransferBackupLine, now, reason=reason, failed_line=lines[index]))
            if t.state is S.RINGING:
                tx.move(t, S.CONFERENCE, now, f"line {index + 1} {reason}")
            self._call_in(t, index + 1, now)
        else:
            # caller and agent stay together in the room: that is "back to the agent" for a three-way
            self._returned(t, reason, now)

    def _call_in(self, t: Transfer, index: int, now: float) -> None:
        """Originate line ``index`` into the room, announced first: the leg becomes a call of its own at the
        PBX (its own Linkedid), and the event tells the records and the wallboard — which receive it before
        anything of that leg — that this call is the transfer's leg, not a citizen calling the hotline."""
        line = conf.destination_lines(t)[index]
        self.publish(t.event(ev.ThreewayLegCalled, now, line=line, room=t.room, leg_call_id=conf.leg_id(t, index)))
        self.send((conf.call_in(t, index),), f"xfer:{t.id}:originate")

    # hang-ups ----------------------------------------------------------------------------------------

    def _hangup(self, e: ami.Hangup, now: float) -> None:
        name = e.snap.channel
        if self._leg_hangup(e, now):
            return
        for t in self.active():
            if name == t.caller_channel:
                t.caller_gone = True
                if t.state is S.ANSWERED:
                    if t.dest_gone or not t.dest_channel or t.mode == "threeway":
                        self._closed(t, now)
                else:
                    self._fail(t, "caller_hangup", now)
            elif name == t.dest_channel:
                t.dest_gone = True
                if t.state is S.ANSWERED and t.caller_gone:
                    self._closed(t, now)
                elif t.mode == "threeway" and t.state is S.RINGING:
                    found = self._by_leg(e.snap.uniqueid)
                    if found is not None and found[1] == t.originate_index and e.cause not in (None, 16):
                        self._call_in_failed(t, found[1], tx.dial_failure_reason(tx.cause_status(e.cause)), now)
            elif name == t.route_channel and t.mode == "attended" and not t.caller_gone and (
                self.view.channel(t.agent_channel) is not None
            ):  # the consultation ended, not completed (the agent is still there): Asterisk gives the caller
                self._returned(t, t.last_failure or "back_to_agent", now)  # back (a cancel's lost reply too)
            elif name == t.agent_channel and t.mode == "attended" and t.state is S.ANSWERED:
                log.info("transfer.attended_completed", transfer_id=t.id)

    def _unhold(self, e: ami.Unhold, now: float) -> None:
        """The agent is taken off hold while consulting and no consultation leg ever entered the target
        context: Asterisk's attended-transfer feature gave up (no target digits). The agent is back with
        the caller; the transfer failed (a later ``complete`` would hang the agent up on the caller)."""
        for t in self.active():
            if t.mode == "attended" and e.snap.channel == t.agent_channel and not t.route_channel and t.state in (
                S.SENDING, S.CONSULTING,
            ):
                self._fail(t, "no_consultation", now)

    def _conf_leave(self, e: ami.ConfbridgeLeave, now: float) -> None:
        for t in self.active():
            if t.room == e.conference and e.snap.channel == t.agent_channel and not t.agent_left:
                t.agent_left = True
                self.publish(t.event(ev.ThreewayAgentLeft, now, room=t.room))

    # --- action results -----------------------------------------------------------------------------

    def action_result(self, t: Transfer, step: str, r: ActionResult, now: float) -> None:
        if t.done:
            return
        if step == "start":
            if r.outcome == "ok":
                if t.state in (S.SENDING, S.UNKNOWN):
                    target = {"blind": S.ROUTING, "attended": S.CONSULTING, "threeway": S.CONFERENCE}[t.mode]
                    tx.move(t, target, now, "actions accepted")
                if t.mode == "threeway":
                    self._room_ready(t, now)
            elif r.outcome == "unknown":
                tx.move(t, S.UNKNOWN, now, r.error)
            elif t.state in (S.SENDING, S.UNKNOWN):
                self._fail(t, f"ami_{r.outcome}: {r.error}".rstrip(": "), now)
        elif step == "originate" and r.outcome in ("failed", "unavailable"):
            self._call_in_failed(t, t.originate_index, "ami_error", now)
        elif step == "cancel" and r.outcome == "ok":
            self._returned(t, "cancelled", now)
        elif step == "complete" and r.outcome == "ok":
            # the transferer hung up: Asterisk joins caller and destination (AttendedTransfer)
            self._answered(t, None, now)
        elif r.outcome != "ok":
            log.warning("transfer.step_failed", transfer_id=t.id, step=step, outcome=r.outcome, error=r.error)

    def _room_ready(self, t: Transfer, now: float) -> None:
        self.publish(t.event(ev.ThreewayStarted, now, room=t.room))
        self._call_in(t, t.originate_index, now)
        if t.handover_timeout > 0:
            self.out.append(StartTimer(handover.timer_key(t.id), t.handover_timeout))

    def handover_expired(self, transfer_id: str, now: float) -> None:
        """The hand-over deadline passed (see :mod:`callbridge.engine.handover`)."""
        t = self.transfers.get(transfer_id)
        if t is None:
            return
        verdict = handover.verdict(t)
        log.info("threeway.handover_timeout", transfer_id=t.id, state=t.state.value, verdict=verdict)
        if verdict == "kick_agent":
            self.send(conf.leave_room(t), f"xfer:{t.id}:leave")
        elif verdict == "give_up":
            leg = t.dest_channel
            self._returned(t, handover.REASON, now)  # first: no backup line is called in after this
            t.last_failure = handover.REASON
            if leg:
                self.send((Hangup(channel=leg, cause=16),), f"xfer:{t.id}:handover")

    def reconcile(self, t: Transfer, now: float) -> None:
        """After a resync: decide from the PBX's picture, never by sending the lost action again."""
        caller = self.view.channel(t.caller_channel)
        if caller is None:
            if t.state is S.ANSWERED:
                self._closed(t, now)
            else:
                self._fail(t, "caller_hangup", now)
            return
        if t.state is not S.UNKNOWN:
            self._catch_up(t, now)
            return
        moved = caller.context.startswith(("cb-to-", "cb-expert-", "cb-conf", "cb-back")) or (
            t.agent_channel not in {p.name for p in self.view.bridge_peers(caller.uniqueid)}
            and self.view.channel(t.agent_channel) is not None
            and t.mode != "attended"
        )
        if not moved:
            self._fail(t, "ami_outcome_unknown", now)
            return
        target = {"blind": S.ROUTING, "attended": S.CONSULTING, "threeway": S.CONFERENCE}[t.mode]
        tx.move(t, target, now, "resync shows the action took effect")
        if t.mode == "threeway":
            self._room_ready(t, now)
        else:
            self._catch_up(t, now)

    def _catch_up(self, t: Transfer, now: float) -> None:
        """Events missed while disconnected: read where the caller is now from the resynced picture."""
        if t.state in tx.TERMINAL or t.mode == "threeway":
            return
        caller = self.view.channel(t.caller_channel)
        if caller is None:
            return
        peers = self.view.bridge_peers(caller.uniqueid)
        if t.mode == "attended" and t.route_channel and self.view.channel(t.route_channel) is None and any(
            same_agent(t.agent, peer.name) for peer in peers
        ):  # the consultation is over and the caller is back with the agent (a cancel whose reply was lost)
            self._returned(t, t.last_failure or "back_to_agent", now)
            return
        if t.state is S.ANSWERED:
            return
        line_endpoints = {line.rpartition("@")[2] for line in t.lines if "@" in line}
        for peer in peers:
            endpoint = endpoint_of(peer.name)
            queue_agent = bool(peer.queue) and not same_agent(t.agent, peer.name)
            if endpoint in line_endpoints or peer.name == t.dest_channel or queue_agent:
                t.line = next((ln for ln in t.lines if ln.endswith("@" + endpoint)), t.line or peer.queue)
                self._answered(t, tx.snapshot_of(peer), now)
                return
            if same_agent(t.agent, peer.name) and t.mode == "blind":
                self._returned(t, t.last_failure or "back_to_agent", now)
                return


def _line_of(t: Transfer, dial_string: str) -> str:
    """DialBegin's DialString (``110@hotline-110``: Asterisk drops the technology) as the transfer's line
    (``PJSIP/110@hotline-110``), so every event of a transfer names a line the same way."""
    return next((line for line in t.lines if line == dial_string or line.partition("/")[2] == dial_string),
                dial_string)


def _cause_reason(cause: int | None) -> str:
    """Q.850 cause of a failed leg → failure reason (17 busy, 18/19 noanswer, 34 congestion, else unreachable)."""
    return tx.dial_failure_reason(tx.cause_status(cause))


_HANDLERS: dict[type[ami.AmiEvent], Callable[[Observer, Any, float], None]] = {
    ami.UserEvent: Observer._user_event,
    ami.DialBegin: Observer._dial_begin,
    ami.DialEnd: Observer._dial_end,
    ami.AgentCalled: Observer._agent_called,
    ami.AgentConnect: Observer._agent_connect,
    ami.QueueCallerJoin: Observer._queue_join,
    ami.Newstate: Observer._leg_state,
    ami.ConfbridgeJoin: Observer._conf_join,
    ami.ConfbridgeLeave: Observer._conf_leave,
    ami.Unhold: Observer._unhold,
    ami.OriginateResponse: Observer._originate_response,
    ami.Hangup: Observer._hangup,
}
