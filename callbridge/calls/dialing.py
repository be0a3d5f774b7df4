"""Dialling: who is rung, who answers, and what a Local channel hides (DialBegin / DialState / DialEnd).

Asterisk facts relied on (AMI DialBegin/DialState/DialEnd, Asterisk 13 to 22):

* ``DialBegin`` only says a leg was created and called: it has not rung yet. A trunk that is unreachable
  (no response, SIP timer B) or busy never rings, so ``call.ringing`` waits for ``DialState RINGING`` (or
  ``PROGRESS``: early media), or for the answer itself (a Local channel answers without ringing).
* ``DialEnd`` ``DialStatus`` is ANSWER | BUSY | NOANSWER | CANCEL | CONGESTION | CHANUNAVAIL (and the rarer
  DONTCALL, TORTURE, INVALIDARGS). With several legs (ring group ``Dial(A&B)``, queue ``ringall``) the
  winner's ANSWER is followed by CANCEL for the others: a CANCEL after an answer changes nothing. A
  ``Forward`` header means the leg was replaced by the forward target (a new DialBegin follows).
* A ``Local/x@ctx;1``/``;2`` pair is a hop, not a party: ``;1`` is dialled, ``;2`` runs the dialplan and
  dials the real phone. The real leg rings and answers first, then the ringing/answer propagates to ``;1``:
  that propagated copy is not reported again. A Local channel whose ``;2`` dials nothing (it answers in
  the dialplan: an IVR, a simulated phone) is itself the party.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callbridge.ami import events as ami
from callbridge.ami.events import endpoint_of
from callbridge.calls import builders as make
from callbridge.calls import transfers
from callbridge.calls.model import Call, Channel, States
from callbridge.domain import DomainEvent

if TYPE_CHECKING:
    from callbridge.calls.tracker import CallTracker

Out = list[DomainEvent]
S = States
RINGING_STATUSES = frozenset({"RINGING", "PROGRESS"})


def real_party(t: CallTracker, ch: Channel, depth: int = 0) -> Channel | None:
    """The non-Local channel a Local ``;1`` stands for (following chained hops), ``None`` when nothing real
    is behind it (yet). Answered legs first, then legs still being dialled, then the ``;2``'s bridge peers."""
    if not ch.is_local or ch.role == "caller":
        return ch
    partner = t.local_partner(ch)
    if partner is None or depth > 8:
        return None
    for uid in (partner.answered_dest, *sorted(partner.dialing)):
        behind = t._channels.get(uid) if uid else None
        if behind is not None:
            found = real_party(t, behind, depth + 1)
            if found is not None:
                return found
    return None


def is_hop(t: CallTracker, ch: Channel) -> bool:
    """A Local channel with a real party behind it (or still being looked for behind it)."""
    if not ch.is_local or ch.role == "caller":
        return False
    if ch.fronts:
        return True
    partner = t.local_partner(ch)
    return partner is not None and bool(partner.dialing or partner.answered_dest)


def queue_of(t: CallTracker, ch: Channel) -> str:
    """The queue that rang a leg: its own (AgentCalled), or that of the Local hop that dialled it."""
    seen = 0
    while not ch.queue and ch.dialed_by and seen < 8:
        src = t._channels.get(ch.dialed_by)
        hop = t.local_partner(src) if src is not None else None
        if hop is None:
            break
        ch, seen = hop, seen + 1
    return ch.queue


def emit_ringing(t: CallTracker, call: Call, dest: Channel, connected_num: str, out: Out) -> None:
    if dest.rung:
        return
    dest.rung = True
    out.append(
        make.CallRinging(
            ts=t.now, call_id=call.call_id, hotline=call.hotline, agent=endpoint_of(dest.name),
            agent_channel=dest.name, agent_num=dest.caller_num, connected_num=connected_num,
            queue=queue_of(t, dest), caller_num=call.caller_num,
        )
    )  # fmt: skip


def _dial_begin(t: CallTracker, ev: ami.DialBegin, out: Out) -> None:
    src = t.touch(ev.snap, out)
    dest = t.touch(ev.dest, out)
    if src is None or dest is None:
        return  # Originate's own DialBegin (only Dest*): the dialled channel *is* the call's origin
    call = t.call_for(src, out)
    if call is None or dest.dialed_by:
        return  # unknown call, or a duplicate
    src.dialing.add(dest.uniqueid)
    dest.dialed_by = src.uniqueid
    if src.is_local and src.role != "caller":
        src.fronts = True
        partner = t.local_partner(src)
        if partner is not None:
            partner.fronts = True
    t.set_state(call, S.RINGING, "DialBegin")
    if call.transfers:
        transfers.dial_began(t, call, src, dest)


def _dial_state(t: CallTracker, ev: ami.DialState, out: Out) -> None:
    src = t.touch(ev.snap, out)
    dest = t.touch(ev.dest, out)
    if dest is None or ev.dial_status not in RINGING_STATUSES:
        return
    dest.rang = True
    if src is None or is_hop(t, dest):
        return  # an Originate/Atxfer leg rings the call's own origin; a hop's ringing is its real party's
    call = t.call_for(src, out)
    if call is not None:
        emit_ringing(t, call, dest, ev.dest.connected_num, out)


def _dial_end(t: CallTracker, ev: ami.DialEnd, out: Out) -> None:
    src = t.touch(ev.snap, out)
    dest = t.touch(ev.dest, out)
    if src is None or dest is None:
        return
    call = t.call_for(src, out)
    if call is None:
        return
    src.dialing.discard(dest.uniqueid)
    if ev.dial_status == "ANSWER":
        _answered(t, call, src, dest, ev.dest.connected_num, out)
        return
    if call.transfers and not ev.forward:
        transfers.leg_failed(t, call, dest, ev.dial_status, out)
    why = f"DialEnd {ev.dial_status}"
    caller = t._channels.get(call.call_id)
    if src.dialing or ev.forward:
        return  # other legs of the same Dial still ring (ring group, queue ringall), or the forward target will
    if src.answered_dest in t._channels:
        t.set_state(call, S.ANSWERED, why)  # the CANCEL of the losers after the winner's ANSWER
    elif caller is not None and any(caller.uniqueid in q.callers for q in t._queues.values()):
        t.set_state(call, S.QUEUED, why)
    elif call.state == S.HELD:
        return  # a consultation leg failed: the caller is still on hold
    elif caller is not None and t.bridge_peers(caller.uniqueid):
        t.set_state(call, S.ANSWERED, why)
    else:
        t.set_state(call, S.OFFERED, why)


def _answered(t: CallTracker, call: Call, src: Channel, dest: Channel, connected_num: str, out: Out) -> None:
    if dest.answered is not None:
        return  # duplicate
    dest.answered = t.now
    src.answered_dest = dest.uniqueid
    t.set_state(call, S.ANSWERED, "DialEnd ANSWER")
    if is_hop(t, dest):
        return  # the real party behind the Local hop was announced when it answered
    call.answered = call.answered if call.answered is not None else t.now
    name = dest.picked_by or dest.name  # a picked-up leg is answered by the picker
    call.agent = endpoint_of(name)
    emit_ringing(t, call, dest, connected_num, out)  # a leg that answered without ringing first (Local)
    out.append(
        make.CallAnswered(
            ts=t.now, call_id=call.call_id, hotline=call.hotline, agent=call.agent, agent_channel=name,
            agent_num=dest.picked_num or dest.caller_num, connected_num=connected_num, queue=queue_of(t, dest),
            wait_s=round(max(0.0, t.now - call.created), 3), caller_num=call.caller_num,
        )
    )  # fmt: skip
    if call.transfers:
        transfers.party_answered(t, call, dest, out)


Handler = Callable[["CallTracker", Any, Out], None]
def _pickup(t: CallTracker, ev: ami.Pickup, out: Out) -> None:
    """A phone picked a ringing leg up (directed ``Pickup(exten)`` or group ``*8``): Asterisk moves the picker
    into that leg, whose answer then reaches the caller's Dial; the picker's own channel only did the picking
    (its call ends as ``pickup``, not as an unanswered call)."""
    picker = t.touch(ev.snap, out, False)
    target = t.touch(ev.target, out, False)
    if target is None:
        return
    target.picked_by, target.picked_num = ev.snap.channel, ev.snap.caller_num
    own = t._calls.get(picker.linkedid) if picker is not None else None
    if own is not None and own.call_id != target.linkedid:
        own.picked_up = True


HANDLERS: dict[type[ami.AmiEvent], Handler] = {
    ami.Pickup: _pickup,
    ami.DialBegin: _dial_begin,
    ami.DialState: _dial_state,
    ami.DialEnd: _dial_end,
}
