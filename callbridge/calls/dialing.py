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
  dials the real phone (or another hop: chains). The real leg rings and answers ``;2``'s Dial first; that
  answer is queued to ``;1`` and reaches the outer Dial (or Queue) later. Until the outer Dial answers
  ``;1`` the party behind it is only *pending*: with several legs (queue ``ringall`` of Local seats, ring
  groups) two inner Dials may be answered in the same millisecond and Asterisk connects only one ``;1``,
  hanging the other hop up (recorded live: ``live_q120_local_hops_*``). So ``call.answered`` names the party
  behind the hop the caller side answered, at that DialEnd (or at the queue's AgentConnect, which follows
  it), and a losing hop's pending party is dropped when the hop hangs up. An Atxfer consultation leg or an
  originated Local channel has no outer Dial: its party is announced at once. A Local channel whose ``;2``
  dials nothing (it answers in the dialplan: an IVR, a simulated phone) is itself the party.
"""

from __future__ import annotations

from callbridge.ami import event_types as ami
from callbridge.ami.event_types import endpoint_of
from callbridge.calls import builders as make
from callbridge.calls import transfers
from callbridge.calls.hops import (
    answered_party,
    bridge_peers,
    dials_behind_a_hop,
    front_gone,
    is_hop,
    unanswered_front,
)
from callbridge.calls.model import Call, Channel, States
from callbridge.calls.state import Handler, Out, TrackerState

S = States
RINGING_STATUSES = frozenset({"RINGING", "PROGRESS"})


def queue_of(s: TrackerState, ch: Channel) -> str:
    """The queue that rang a leg: its own (AgentCalled), or that of the Local hop that dialled it."""
    seen = 0
    while not ch.queue and ch.dialed_by and seen < 8:
        src = s.channels.get(ch.dialed_by)
        hop = s.local_partner(src) if src is not None else None
        if hop is None:
            break
        ch, seen = hop, seen + 1
    return ch.queue


def emit_ringing(s: TrackerState, call: Call, dest: Channel, connected_num: str, out: Out) -> None:
    if dest.rung:
        return
    dest.rung = True
    out.append(
        make.CallRinging(
            ts=s.now, call_id=call.call_id, hotline=call.hotline, agent=endpoint_of(dest.name),
            agent_channel=dest.name, agent_num=dest.caller_num, connected_num=connected_num,
            queue=queue_of(s, dest), caller_num=call.caller_num,
        )
    )  # fmt: skip


def _dial_begin(s: TrackerState, ev: ami.DialBegin, out: Out) -> None:
    src = s.touch(ev.snap, out)
    dest = s.touch(ev.dest, out)
    if src is None or dest is None:
        return  # Originate's own DialBegin (only Dest*): the dialled channel *is* the call's origin
    call = s.call_for(src, out)
    if call is None or dest.dialed_by:
        return  # unknown call, or a duplicate
    src.dial(dest.uniqueid)
    dest.dialed_by = src.uniqueid
    if src.is_local and src.role != "caller":
        src.fronts = True
        partner = s.local_partner(src)
        if partner is not None:
            partner.fronts = True
    s.set_state(call, S.RINGING, "DialBegin")
    if call.transfers:
        transfers.dial_began(s, call, src, dest)


def _dial_state(s: TrackerState, ev: ami.DialState, out: Out) -> None:
    src = s.touch(ev.snap, out)
    dest = s.touch(ev.dest, out)
    if dest is None or ev.dial_status not in RINGING_STATUSES:
        return
    dest.rang = True
    if src is None or is_hop(s, dest):
        return  # an Originate/Atxfer leg rings the call's own origin; a hop's ringing is its real party's
    call = s.call_for(src, out)
    if call is not None:
        emit_ringing(s, call, dest, ev.dest.connected_num, out)


def _dial_end(s: TrackerState, ev: ami.DialEnd, out: Out) -> None:
    src = s.touch(ev.snap, out)
    dest = s.touch(ev.dest, out)
    if src is None or dest is None:
        return
    call = s.call_for(src, out)
    if call is None:
        return
    src.dialled(dest.uniqueid)
    if ev.dial_status == "ANSWER":
        _answered(s, call, src, dest, ev.dest.connected_num, out)
        return
    if call.transfers and not ev.forward:
        transfers.leg_failed(s, call, dest, ev.dial_status, out)
    why = f"DialEnd {ev.dial_status}"
    caller = s.channels.get(call.call_id)
    if src.dialing or ev.forward or dials_behind_a_hop(s, src):
        return  # other legs of the same Dial still ring (ring group, queue ringall), or the forward target will,
        # or this was a Local hop's inner Dial: the outer Dial's (or the Queue's) end decides the call's state
    if src.answered_dest in s.channels:
        s.set_state(call, S.ANSWERED, why)  # the CANCEL of the losers after the winner's ANSWER
    elif caller is not None and any(caller.uniqueid in q.callers for q in s.queues.values()):
        s.set_state(call, S.QUEUED, why)
    elif call.state == S.HELD:
        return  # a consultation leg failed: the caller is still on hold
    elif caller is not None and bridge_peers(s, caller.uniqueid):
        s.set_state(call, S.ANSWERED, why)
    else:
        s.set_state(call, S.OFFERED, why)


def _answered(s: TrackerState, call: Call, src: Channel, dest: Channel, connected_num: str, out: Out) -> None:
    if dest.answered is not None or front_gone(s, src):
        return  # duplicate, or behind a losing hop already hung up: that phone never talks to the caller
    dest.answered = s.now
    src.answered_dest = dest.uniqueid
    if unanswered_front(s, src) is not None:
        return  # behind a Local hop the caller side has not answered: pending (the outer Dial may pick another)
    s.set_state(call, S.ANSWERED, "DialEnd ANSWER")
    party = (answered_party(s, dest) if is_hop(s, dest) else None) or dest  # a hop with nobody behind: itself
    announce(s, call, party, party.connected_num if party is not dest else connected_num, out)


def announce(s: TrackerState, call: Call, party: Channel, connected_num: str, out: Out) -> None:
    """The caller is talking to ``party`` now (its own answer, or the one behind the hop the caller side just
    answered): call.answered, with the wait until this moment, and the transfers it answers for."""
    call.answered = call.answered if call.answered is not None else s.now
    name = party.picked_by or party.name  # a picked-up leg is answered by the picker
    call.agent = endpoint_of(name)
    emit_ringing(s, call, party, connected_num, out)  # a leg that answered without ringing first (Local)
    out.append(
        make.CallAnswered(
            ts=s.now, call_id=call.call_id, hotline=call.hotline, agent=call.agent, agent_channel=name,
            agent_num=party.picked_num or party.caller_num, connected_num=connected_num, queue=queue_of(s, party),
            wait_s=round(max(0.0, s.now - call.created), 3), caller_num=call.caller_num,
        )
    )  # fmt: skip
    if call.transfers:
        transfers.party_answered(s, call, party, out)


def connected(s: TrackerState, call: Call, caller: Channel, dest: Channel, out: Out) -> None:
    """A queue connected its caller with a member leg (AgentConnect, after the leg's DialEnd ANSWER on
    Asterisk 12 to 22): when that DialEnd was not seen, this is the caller side's answer."""
    if dest.answered is None and dest.dialed_by == caller.uniqueid:
        caller.dialled(dest.uniqueid)
        _answered(s, call, caller, dest, dest.connected_num, out)


def hop_gone(s: TrackerState, ch: Channel) -> None:
    """A Local ``;1`` hung up before the caller side answered it (the losing leg of a queue or ring group):
    the party that answered behind it never talked to the caller, so it is no longer pending — its own
    hang-up then counts as an attempt that was never answered."""
    if ch.local_half != "1" or ch.answered is not None or ch.role == "caller" or not ch.dialed_by:
        return  # answered, or no outer Dial rang it (an Atxfer consultation leg): nothing was pending
    inner = s.local_partner(ch)
    party = answered_party(s, ch)
    if inner is not None:
        inner.answered_dest = ""
    if party is not None and party is not ch and not party.is_local:
        party.answered = None


def _pickup(s: TrackerState, ev: ami.Pickup, out: Out) -> None:
    """A phone picked a ringing leg up (directed ``Pickup(exten)`` or group ``*8``): Asterisk moves the picker
    into that leg, whose answer then reaches the caller's Dial; the picker's own channel only did the picking
    (its call ends as ``pickup``, not as an unanswered call)."""
    picker = s.touch(ev.snap, out, False)
    target = s.touch(ev.target, out, False)
    if target is None:
        return
    target.picked_by, target.picked_num = ev.snap.channel, ev.snap.caller_num
    own = s.calls.get(picker.linkedid) if picker is not None else None
    if own is not None and own.call_id != target.linkedid:
        own.picked_up = True


HANDLERS: dict[type[ami.AmiEvent], Handler] = {
    ami.Pickup: _pickup,
    ami.DialBegin: _dial_begin,
    ami.DialState: _dial_state,
    ami.DialEnd: _dial_end,
}
