"""Transfers: what Asterisk reports (BlindTransfer / AttendedTransfer) and the one outcome each one has.

Asterisk facts relied on (AMI BlindTransfer/AttendedTransfer, DialEnd, HangupRequest, Asterisk 13 to 22):

* ``BlindTransfer Result: Success`` only means the transferee was handed to the dialplan at
  ``Extension@Context``; whether anyone answers shows later. The legs the dialplan dials for it are the
  transfer's *attempts*: dialled by the transferee itself, or by a channel born after the transfer (a Local
  hop, a queue). A failed attempt carries its reason in ``DialEnd DialStatus`` and its Q.850 cause and SIP
  status in the leg's ``HangupRequest``/``Hangup`` (``Cause``/``TechCause``); a Dial whose leg could not
  even be created (a qualified-unavailable trunk) leaves nothing but the caller's own ``Hangup Cause``.
* After a failure the dialplan decides the caller's fate: it may dial a backup (``rescued``) or hang up
  (``lost``), so a failed transfer's outcome is reported when that fate is known.
* ``AttendedTransfer`` ``DestType``: ``Bridge``/``Link``/``Threeway`` join the transferee with a target that
  already answered; ``App`` hands the transferee to the application the transferer's second leg was in —
  with ``DestApp: Dial`` the target is still ringing (a "blonde" transfer) and answers, or not, later.
  Older Asterisk versions send no ``Transferee*``/``TransferTarget*`` headers: they are found in the bridges
  (``OrigBridgeUniqueid`` holds the transferee, ``SecondBridgeUniqueid`` the target).
"""

from __future__ import annotations

import structlog

from callbridge.ami import event_types as ami
from callbridge.ami.event_types import ChannelSnapshot, endpoint_of
from callbridge.calls import events as ce
from callbridge.calls.hops import bridge_peers, real_party
from callbridge.calls.model import Call, Channel, States, Transfer, TransferFailure
from callbridge.calls.state import Handler, Out, TrackerState

log = structlog.get_logger("callbridge.calls")
S = States

# Why a leg failed, by its DialStatus, Q.850 cause or SIP status, first match wins (ITU-T Q.850; RFC 3261
# section 21; Asterisk's hangup-cause ↔ SIP mapping in chan_pjsip). A decline comes first: app_dial reports it
# as BUSY or NOANSWER depending on the version. "timed_out" (an empty DialStatus too: none was reported) is
# no_answer or unreachable, by whether the leg rang.
_NONE: frozenset[str] = frozenset()
_REASONS: tuple[tuple[str, frozenset[str], frozenset[int], frozenset[str]], ...] = (
    ("rejected", _NONE, frozenset({21}), frozenset({"403", "603"})),
    ("busy", frozenset({"BUSY"}), frozenset({17}), frozenset({"486", "600"})),
    ("congestion", frozenset({"CONGESTION"}), frozenset({34, 38, 41, 42, 44, 47}), frozenset({"500", "503", "504"})),
    ("unreachable", frozenset({"CHANUNAVAIL"}), frozenset({1, 2, 3, 20, 22, 27, 28}),
     frozenset({"404", "410", "484", "502"})),
    ("caller_hangup", frozenset({"CANCEL"}), frozenset(), _NONE),
    ("timed_out", frozenset({"NOANSWER", ""}), frozenset({18, 19}), frozenset({"408", "480"})),
)  # fmt: skip


def failure_reason(dial_status: str, cause: int | None, sip_status: str, rang: bool) -> str:
    """Why a leg failed, from its DialStatus, Q.850 cause and SIP status (see ``_REASONS``).

    A leg that timed out (NOANSWER, cause 18/19, SIP 408/480) without ever ringing had nobody to ring —
    PJSIP reports SIP timer B as 408 and an unreachable contact as 480 — so it is ``unreachable``."""
    for reason, statuses, causes, sip_statuses in _REASONS:
        if dial_status in statuses or cause in causes or sip_status in sip_statuses:
            if reason == "timed_out":
                return "no_answer" if rang else "unreachable"
            return reason
    return "no_answer"


# --- the transfer events ------------------------------------------------------------------------------


def _seen(call: Call, kind: str, bridge_id: str, a: ChannelSnapshot | None, b: ChannelSnapshot | None,
          *rest: str) -> bool:  # fmt: skip
    """True when this very transfer was already reported (a duplicated event)."""
    key = (kind, bridge_id, a.uniqueid if a else "", b.uniqueid if b else "", *rest)
    return call.saw_transfer(key)


def _blind_transfer(s: TrackerState, ev: ami.BlindTransfer, out: Out) -> None:
    transferer = s.touch(ev.transferer, out, create=False)
    transferee = s.touch(ev.transferee, out, create=False)
    call = s.call_for(transferee, out) or s.call_for(transferer, out)
    if call is None:
        log.info("tracker.transfer_unknown_call", transferee=ev.transferee.channel if ev.transferee else "")
        return
    if _seen(call, "blind", ev.bridge.bridge_id, ev.transferer, ev.transferee, ev.extension, ev.result):
        return
    target = f"{ev.extension}@{ev.context}" if ev.context else ev.extension
    xfer = _announce(s, call, "blind", ev.transferer, ev.transferee, target, ev.result, out)
    if ev.result != "Success":
        _refused(s, call, xfer, out)
        return
    s.set_state(call, S.TRANSFERRING, "BlindTransfer")
    _hold(call, xfer)


def _attended_transfer(s: TrackerState, ev: ami.AttendedTransfer, out: Out) -> None:
    transferer = s.touch(ev.orig_transferer, out, create=False)
    transferee_snap = ev.transferee or _bridged_other(s, ev.orig_bridge_id, ev.orig_transferer, ev.second_transferer)
    target_snap = ev.target or _bridged_other(s, ev.second_bridge_id, ev.second_transferer, ev.orig_transferer)
    transferee = s.touch(transferee_snap, out, create=False)
    target_ch = s.touch(target_snap, out, create=False)
    call = s.call_for(transferee, out) or s.call_for(transferer, out)
    if call is None:
        log.info("tracker.transfer_unknown_call", transferee=transferee_snap.channel if transferee_snap else "")
        return
    if _seen(call, "attended", ev.orig_bridge_id, ev.orig_transferer, transferee_snap, ev.second_bridge_id,
             ev.result):  # fmt: skip
        return
    second = s.channel(ev.second_transferer.uniqueid) if ev.second_transferer else None
    ringing = sorted(second.dialing) if second is not None and ev.dest_type == "App" else []
    if target_ch is None and ringing:
        target_ch = s.channels.get(ringing[0])  # a blonde transfer: the leg the transferer was dialling
    target = _party_name(s, target_ch) if target_ch is not None else ev.dest_app
    real_transferee = _real_snapshot(s, transferee, transferee_snap)
    xfer = _announce(s, call, "attended", ev.orig_transferer, real_transferee, target, ev.result, out)
    if ev.result != "Success":
        _refused(s, call, xfer, out)
        return
    s.set_state(call, S.ANSWERED, "AttendedTransfer")
    if ringing:  # the target has not answered yet: its Dial decides (the transferer's second call, often)
        xfer.attempts.update(ringing)
        xfer.pending.update(ringing)
        s.set_state(call, S.RINGING, "AttendedTransfer to a ringing target")
        _hold(call, xfer)
        second_call = s.calls.get(second.linkedid) if second is not None else None
        if second_call is not None and second_call is not call:
            _hold(second_call, xfer)
        return
    party = _real(s, target_ch) if target_ch is not None else None
    _emit(s, call, xfer, out, "completed", answered=party, answered_name=ev.dest_app if party is None else "")


def _bridged_other(s: TrackerState, bridge_id: str, *not_these: ChannelSnapshot | None) -> ChannelSnapshot | None:
    """The channel in ``bridge_id`` that is none of ``not_these`` (the transferee in the original bridge,
    the target in the second), as a snapshot: for AttendedTransfer events without Transferee*/Target*."""
    bridge = s.bridges.get(bridge_id) if bridge_id else None
    skip = {snap.uniqueid for snap in not_these if snap is not None}
    for uid in sorted(bridge.channels) if bridge else ():
        ch = s.channels.get(uid)
        if ch is not None and uid not in skip:
            return ChannelSnapshot(ch.name, "", ch.state_desc, ch.caller_num, ch.caller_name, ch.connected_num,
                                   ch.connected_name, ch.context, ch.exten, "", ch.uniqueid, ch.linkedid)  # fmt: skip
    return None


def _real(s: TrackerState, ch: Channel) -> Channel | None:
    """The real party a channel stands for: itself, or — for a Local half — who is on the far side of the
    pair (bridged with the other half, or being dialled by it)."""
    if not ch.is_local or ch.role == "caller":
        return ch
    partner = s.local_partner(ch)
    if partner is None:
        return None
    peers = bridge_peers(s, partner.uniqueid)
    if peers:
        return next((p for p in peers if not p.is_local), peers[0])
    return real_party(s, ch) if ch.local_half == "1" else None


def _party_name(s: TrackerState, ch: Channel) -> str:
    party = _real(s, ch)
    return party.name if party is not None else ch.name


def _real_snapshot(s: TrackerState, ch: Channel | None, snap: ChannelSnapshot | None) -> ChannelSnapshot | None:
    """The transferee as reported, or — when it is a Local hop — the real party behind it."""
    if ch is None or snap is None or not ch.is_local or ch.role == "caller":
        return snap
    party = _real(s, ch)
    if party is None or party is ch:
        return snap
    return ChannelSnapshot(party.name, "", party.state_desc, party.caller_num, party.caller_name,
                           party.connected_num, party.connected_name, party.context, party.exten, "",
                           party.uniqueid, party.linkedid)  # fmt: skip


def _announce(s: TrackerState, call: Call, kind: str, transferer: ChannelSnapshot | None,
              transferee: ChannelSnapshot | None, target: str, result: str, out: Out) -> Transfer:  # fmt: skip
    xfer = Transfer(
        kind=kind, transferer=transferer.channel if transferer else "",
        transferee=transferee.channel if transferee else "", transferee_uid=transferee.uniqueid if transferee else "",
        target=target, started=s.now, seq=s.seq,
    )  # fmt: skip
    out.append(
        ce.CallTransferred(
            ts=s.now, call_id=call.call_id, hotline=call.hotline, kind=kind, transferer=xfer.transferer,
            transferer_num=transferer.caller_num if transferer else "", transferee=xfer.transferee,
            target=target, result=result, caller_num=call.caller_num,
        )
    )  # fmt: skip
    return xfer


def _hold(call: Call, xfer: Transfer) -> None:
    call.add_transfer(xfer)
    xfer.holders.append(call)


def _refused(s: TrackerState, call: Call, xfer: Transfer, out: Out) -> None:
    xfer.failure = TransferFailure("refused", None, "", "")
    _emit(s, call, xfer, out, "failed", fate="stayed")


# --- following a transfer to its outcome ------------------------------------------------------------------


def dial_began(s: TrackerState, call: Call, src: Channel, dest: Channel) -> None:
    """A leg dialled by the transferee (or by a channel born after the transfer) is an attempt of it."""
    for xfer in call.transfers:
        if src.uniqueid == xfer.transferee_uid or src.first_seq > xfer.seq:
            xfer.attempts.add(dest.uniqueid)
            xfer.pending.add(dest.uniqueid)


def leg_failed(s: TrackerState, call: Call, dest: Channel, dial_status: str, out: Out) -> None:
    """An attempt ended unanswered (DialEnd other than ANSWER, or its Hangup without a DialEnd)."""
    for xfer in call.transfers:
        if dest.uniqueid not in xfer.pending:
            continue
        xfer.pending.discard(dest.uniqueid)
        if not xfer.pending:  # every leg of the transfer failed: the last one says why
            reason = failure_reason(dial_status, dest.hangup_cause, dest.tech_cause, dest.rang)
            xfer.failure = TransferFailure(reason, dest.hangup_cause, dest.tech_cause, dest.name)


def party_answered(s: TrackerState, call: Call, party: Channel, out: Out) -> None:
    """A real party answered in the call: the transfers it answers for are over (completed, or rescued)."""
    for xfer in list(call.transfers):
        if party.name == xfer.transferer:
            continue
        if party.uniqueid in xfer.attempts or party.first_seq > xfer.seq or _behind_attempt(s, xfer, party):
            if xfer.failure is None:
                _emit(s, call, xfer, out, "completed", answered=party)
            else:
                _emit(s, call, xfer, out, "failed", answered=party, fate="rescued")


def _behind_attempt(s: TrackerState, xfer: Transfer, party: Channel) -> bool:
    seen = 0
    ch: Channel | None = party
    while ch is not None and ch.dialed_by and seen < 8:
        if ch.uniqueid in xfer.attempts:
            return True
        src = s.channels.get(ch.dialed_by)
        ch, seen = (s.local_partner(src) if src is not None else None), seen + 1
    return ch is not None and ch.uniqueid in xfer.attempts


def channel_gone(s: TrackerState, call: Call, ch: Channel, cause: int | None, tech_cause: str, out: Out) -> None:
    """A channel hung up: an attempt that never answered failed; a transferee gone ends its transfers."""
    if cause is not None and ch.hangup_cause is None:
        ch.hangup_cause = cause
    if tech_cause and not ch.tech_cause:
        ch.tech_cause = tech_cause
    for xfer in list(call.transfers):
        if xfer.failure is not None and xfer.failure.channel == ch.name and xfer.failure.cause is None:
            xfer.failure.cause, xfer.failure.sip_status = ch.hangup_cause, xfer.failure.sip_status or ch.tech_cause
        if ch.uniqueid in xfer.pending and ch.answered is None:
            leg_failed(s, call, ch, "", out)
        if ch.uniqueid == xfer.transferee_uid:
            _caller_left(s, call, xfer, ch, out)


def _caller_left(s: TrackerState, call: Call, xfer: Transfer, caller: Channel, out: Out) -> None:
    if xfer.failure is None:
        if xfer.pending:
            reason = "caller_hangup"  # the caller gave up while the target was ringing
        elif xfer.attempts:
            reason = "no_answer"
        else:  # no leg was ever created: the caller's own cause is all Asterisk says (3: no route)
            reason = failure_reason("", caller.hangup_cause, caller.tech_cause, False)
            reason = "caller_hangup" if reason == "unreachable" and caller.hangup_cause in (None, 0, 16) else reason
        xfer.failure = TransferFailure(reason, caller.hangup_cause, caller.tech_cause, "")
    _emit(s, call, xfer, out, "failed", fate="lost")


def call_ended(s: TrackerState, call: Call, out: Out) -> None:
    """The call is over: every transfer still open failed and lost its caller."""
    for xfer in list(call.transfers):
        if xfer.failure is None:
            xfer.failure = TransferFailure("caller_hangup" if xfer.pending else "no_answer", call.cause, "", "")
        _emit(s, call, xfer, out, "failed", fate="lost")


def _emit(s: TrackerState, call: Call, xfer: Transfer, out: Out, outcome: str, *, answered: Channel | None = None,
          answered_name: str = "", fate: str = "answered") -> None:  # fmt: skip
    for holder in xfer.holders:
        if xfer in holder.transfers:
            holder.transfers.remove(xfer)
    call = xfer.holders[0] if xfer.holders else call  # reported on the caller's call
    if outcome == "completed" and call.state in (S.RINGING, S.TRANSFERRING):
        s.set_state(call, S.ANSWERED, "transfer completed")
    failure = xfer.failure if outcome == "failed" else None
    out.append(
        ce.CallTransferEnded(
            ts=s.now, call_id=call.call_id, hotline=call.hotline, kind=xfer.kind, transferer=xfer.transferer,
            transferee=xfer.transferee, target=xfer.target, outcome=outcome,
            reason=failure.reason if failure else "", cause=failure.cause if failure else None,
            sip_status=failure.sip_status if failure else "",
            answered_by=endpoint_of(answered.picked_by or answered.name) if answered is not None else answered_name,
            answered_channel=(answered.picked_by or answered.name) if answered is not None else "", caller_fate=fate,
            wait_s=round(max(0.0, s.now - xfer.started), 3), caller_num=call.caller_num,
        )
    )  # fmt: skip


HANDLERS: dict[type[ami.AmiEvent], Handler] = {
    ami.BlindTransfer: _blind_transfer,
    ami.AttendedTransfer: _attended_transfer,
}
