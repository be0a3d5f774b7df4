"""Per-event handlers of the tracker for channels, dialling, bridges, hold, transfers, DTMF and restarts.

Each handler is ``(tracker, event, out) -> None`` and appends the domain events it derives to ``out``.
Queue and conference events are handled in :mod:`callbridge.calls.rooms`, dialling in
:mod:`callbridge.calls.dialing`, transfers in :mod:`callbridge.calls.transfers`.
"""

from __future__ import annotations

import structlog

from callbridge.ami import event_types as ami
from callbridge.calls import builders as make
from callbridge.calls import dialing, rooms, transfers
from callbridge.calls import events as ce
from callbridge.calls.endings import end_call, remove_channel
from callbridge.calls.model import Bridge, Channel, States, new_bridge
from callbridge.calls.state import Handler, Out, TrackerState

log = structlog.get_logger("callbridge.calls")
S = States  # not CallState: see States


# ``create`` is passed positionally on the hot paths: keyword arguments cost a name match per call.
def _update_only(s: TrackerState, ev: ami.ChannelEvent, out: Out) -> None:
    s.touch(ev.snap, out, False)


def _create(s: TrackerState, ev: ami.ChannelEvent, out: Out) -> None:
    s.touch(ev.snap, out)


KEPT_VARIABLES = ("CB_", "__CB_", "QUEUE")  # the channel variables anyone reads (engine, resync)


def _varset(s: TrackerState, ev: ami.VarSet, out: Out) -> None:
    ch = s.touch(ev.snap, out, False)
    if ch is not None and ev.variable.startswith(KEPT_VARIABLES):
        ch.set_variable(ev.variable.removeprefix("__"), ev.value)


def _hangup(s: TrackerState, ev: ami.Hangup, out: Out) -> None:
    ch = s.touch(ev.snap, out, False)
    if ch is None:
        log.debug("tracker.hangup_unknown_channel", channel=ev.snap.channel, uniqueid=ev.snap.uniqueid)
        remove_channel(s, ev.snap.uniqueid, out)  # still remember it as gone (late events)
        return
    s.call_for(ch, out)
    dialing.hop_gone(s, ch)
    remove_channel(s, ch.uniqueid, out, ev.cause, ev.cause_txt, tech_cause=ev.tech_cause)


def _hangup_request(s: TrackerState, ev: ami.HangupRequest, out: Out) -> None:
    """Keep the first Q.850 cause and SIP status a leg is hung up with (a failed transfer reports them)."""
    ch = s.touch(ev.snap, out, False)
    if ch is None:
        return
    if ev.cause is not None and ch.hangup_cause is None:
        ch.hangup_cause = ev.cause
    if ev.tech_cause and not ch.tech_cause:
        ch.tech_cause = ev.tech_cause


def _bridge_of(s: TrackerState, snap: ami.BridgeSnapshot) -> Bridge | None:
    if not snap.bridge_id:
        return None
    bridge = s.bridges.get(snap.bridge_id)
    if bridge is None:
        bridge = new_bridge(snap.bridge_id, snap.bridge_type, snap.technology, snap.creator, snap.name)
        s.bridges[snap.bridge_id] = bridge
    return bridge


def _bridge_create(s: TrackerState, ev: ami.BridgeCreate, out: Out) -> None:
    _bridge_of(s, ev.bridge)


def _bridge_destroy(s: TrackerState, ev: ami.BridgeDestroy, out: Out) -> None:
    bridge = s.bridges.pop(ev.bridge.bridge_id, None)
    for uid in bridge.channels if bridge else ():
        ch = s.channels.get(uid)
        if ch is not None and ch.bridge_id == ev.bridge.bridge_id:
            ch.bridge_id = None


def _bridge_enter(s: TrackerState, ev: ami.BridgeEnter, out: Out) -> None:
    ch = s.touch(ev.snap, out)
    snap = ev.bridge
    bridge = s.bridges.get(snap.bridge_id) or _bridge_of(s, snap)  # the look-up first: a call less when known
    if ch is None or bridge is None:
        return
    join_bridge(s, ch, bridge)
    call = s.call_for(ch, out)
    if call is not None and call.state in (S.HELD, S.TRANSFERRING) and len(bridge.channels) > 1:
        s.set_state(call, S.ANSWERED, "BridgeEnter")


def join_bridge(s: TrackerState, ch: Channel, bridge: Bridge) -> None:
    if ch.bridge_id:  # "" is never a bridge id
        old = s.bridges.get(ch.bridge_id)
        if old is not None and old is not bridge:
            old.channels.discard(ch.uniqueid)
    ch.bridge_id = bridge.bridge_id
    bridge.channels.add(ch.uniqueid)


def _bridge_leave(s: TrackerState, ev: ami.BridgeLeave, out: Out) -> None:
    snap = ev.snap
    ch = s.touch(snap, out, False)
    bridge_id = ev.bridge.bridge_id
    bridge = s.bridges.get(bridge_id)
    if bridge is not None:
        bridge.channels.discard(snap.uniqueid)
    if ch is not None and ch.bridge_id == bridge_id:
        ch.bridge_id = None


def _bridge_merge(s: TrackerState, ev: ami.BridgeMerge, out: Out) -> None:
    src = s.bridges.pop(ev.from_bridge.bridge_id, None)
    dst = _bridge_of(s, ev.to_bridge)
    if src is None or dst is None:
        return
    for uid in list(src.channels):
        ch = s.channels.get(uid)
        if ch is not None:
            join_bridge(s, ch, dst)


def _hold(s: TrackerState, ev: ami.Hold | ami.Unhold, out: Out) -> None:
    holding = isinstance(ev, ami.Hold)
    ch = s.touch(ev.snap, out, create=holding)
    call = s.call_for(ch, out)
    if ch is None or call is None or ch.on_hold == holding:
        return  # an Unhold without Hold (Asterisk sends one on BlindTransfer) or a duplicate
    ch.on_hold = holding
    if holding:
        s.set_state(call, S.HELD, "Hold")
        out.append(ce.CallHeld(ts=s.now, call_id=call.call_id, hotline=call.hotline, channel=ch.name,
                               party=ch.role, caller_num=call.caller_num))  # fmt: skip
    else:
        if call.state == S.HELD:
            s.set_state(call, S.ANSWERED, "Unhold")
        out.append(ce.CallUnheld(ts=s.now, call_id=call.call_id, hotline=call.hotline, channel=ch.name,
                                 party=ch.role, caller_num=call.caller_num))  # fmt: skip


def _dtmf_begin(s: TrackerState, ev: ami.DTMFBegin, out: Out) -> None:
    ch = s.touch(ev.snap, out)
    if ch is not None and ev.direction == "Received" and not ch.is_local:
        ch.key_down(ev.digit)


def _dtmf_end(s: TrackerState, ev: ami.DTMFEnd, out: Out) -> None:
    ch = s.touch(ev.snap, out)
    if ch is None or ev.direction != "Received" or ch.is_local:
        return  # relayed copies on Local halves and Sent digits are not a party pressing a key
    if not ch.key_up(ev.digit):
        return  # injected by Asterisk (Atxfer/CancelAtxfer feature codes, PlayDTMF): no DTMFBegin
    call = s.call_for(ch, out)
    if call is None:
        return
    out.append(make.CallDtmf(ts=s.now, call_id=call.call_id, hotline=call.hotline, channel=ch.name, party=ch.role,
                           digit=ev.digit, duration_ms=ev.duration_ms, direction=ev.direction))  # fmt: skip


def _shutdown(s: TrackerState, ev: ami.Shutdown, out: Out) -> None:
    if s.uptime == -1 and not s.calls and not s.channels:
        return  # a duplicated Shutdown
    ended = list(s.calls.values())
    for call in ended:
        call.cause_txt = call.cause_txt or "pbx shutdown"
        end_call(s, call, out, "pbx_restart")
    dropped = s.clear()
    s.uptime = -1  # a FullyBooted after this is the restart's boot
    out.append(ce.PbxRestarted(ts=s.now, phase="shutdown", restart=ev.restart, dropped_calls=len(ended) + dropped))


def _fully_booted(s: TrackerState, ev: ami.FullyBooted, out: Out) -> None:
    """FullyBooted comes after every login too; only a smaller uptime than last time means a restart."""
    previous, s.uptime = s.uptime, ev.uptime
    if previous is None or ev.uptime is None or (previous >= 0 and ev.uptime >= previous):
        return
    ended = list(s.calls.values())
    for call in ended:
        end_call(s, call, out, "pbx_restart")
    s.clear()
    out.append(ce.PbxRestarted(ts=s.now, phase="booted", restart=True, dropped_calls=len(ended)))


def _core_show_channel(s: TrackerState, ev: ami.CoreShowChannel, out: Out) -> None:
    ch = s.touch(ev.snap, out)
    s.remember_list_item(ev, ev.action_id)
    if ch is not None and ev.bridge_id:
        bridge = s.bridges.get(ev.bridge_id) or _bridge_of(s, ami.BridgeSnapshot(ev.bridge_id, "", "", "", "", 0))
        if bridge is not None:
            join_bridge(s, ch, bridge)


def _bridge_info_channel(s: TrackerState, ev: ami.BridgeInfoChannel, out: Out) -> None:
    s.touch(ev.snap, out)
    s.remember_list_item(ev, ev.action_id)


def _bridge_info_complete(s: TrackerState, ev: ami.BridgeInfoComplete, out: Out) -> None:
    bridge = _bridge_of(s, ev.bridge)
    for item in s.take_list(ev.action_id):
        ch = s.channels.get(item.snap.uniqueid) if isinstance(item, ami.BridgeInfoChannel) else None
        if ch is not None and bridge is not None:
            join_bridge(s, ch, bridge)


def _local_bridge(s: TrackerState, ev: ami.LocalBridge, out: Out) -> None:
    s.touch(ev.local_one, out)
    s.touch(ev.local_two, out)


def _bridge_list_item(s: TrackerState, ev: ami.BridgeListItem, out: Out) -> None:
    _bridge_of(s, ev.bridge)


HANDLERS: dict[type[ami.AmiEvent], Handler] = {
    ami.Newchannel: _create,
    ami.Newstate: _create,
    ami.NewCallerid: _update_only,
    ami.NewConnectedLine: _update_only,
    ami.HangupRequest: _hangup_request,
    ami.SoftHangupRequest: _update_only,
    ami.MusicOnHoldStart: _update_only,
    ami.MusicOnHoldStop: _update_only,
    ami.VarSet: _varset,
    ami.Hangup: _hangup,
    ami.BridgeCreate: _bridge_create,
    ami.BridgeDestroy: _bridge_destroy,
    ami.BridgeEnter: _bridge_enter,
    ami.BridgeLeave: _bridge_leave,
    ami.BridgeMerge: _bridge_merge,
    ami.Hold: _hold,
    ami.Unhold: _hold,
    ami.DTMFBegin: _dtmf_begin,
    ami.DTMFEnd: _dtmf_end,
    ami.Shutdown: _shutdown,
    ami.FullyBooted: _fully_booted,
    ami.CoreShowChannel: _core_show_channel,
    ami.BridgeInfoChannel: _bridge_info_channel,
    ami.BridgeInfoComplete: _bridge_info_complete,
    ami.BridgeListItem: _bridge_list_item,
    ami.LocalBridge: _local_bridge,
    **rooms.HANDLERS,
    **dialing.HANDLERS,
    **transfers.HANDLERS,
}
