"""Rebuilding the tracker's picture from list events, and dumping it as JSON.

After every (re)connect the AMI client asks Asterisk for the full picture (CoreShowChannels, BridgeList /
BridgeInfo, QueueStatus, ConfbridgeList) and hands the list items to :meth:`CallTracker.resync`. What the
lists show is the truth: channels missing from them are gone (their calls end with reason
``vanished``), new ones are adopted (their calls are offered), queue callers get their QUEUE_PRIO from
``QueueEntry``, members their status, rooms their parties.

After callbridge itself restarted, the tracker starts empty but callbridge's records know the calls it had
offered: the composition root puts them in :attr:`CallTracker.known` before the first resync. A listed
channel of such a call is adopted into the call as it was (its hotline, caller, answer and agent), never
offered again; a known call the PBX no longer lists ended while callbridge was not watching and is ended
now (reason ``ended_while_unobserved``, at the last moment it was known alive). ``known`` is used once.
A call it has no record of takes its hotline from ``CB_HOTLINE``, which the resync reads back from the
call's first channel (``VarSet`` items, see :mod:`callbridge.ami.resync`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence

import structlog

from callbridge.ami import event_types as ami
from callbridge.calls import builders as make
from callbridge.calls import hops, rooms
from callbridge.calls.endings import remove_channel
from callbridge.calls.handlers import join_bridge
from callbridge.calls.model import Bridge, CallState, Channel, new_call
from callbridge.calls.state import Out, TrackerState
from callbridge.domain import jsonable

log = structlog.get_logger("callbridge.calls")

#: ``call.ended`` reason of a call that ended while callbridge was not running (seen in its records, not
#: on the PBX any more at the first resync).
ENDED_UNOBSERVED = "ended_while_unobserved"
#: A hotline number as a channel variable may carry it (digits, as the dialplan's hotline numbers are).
_HOTLINE = re.compile(r"[0-9]{1,20}")


def channels_listed(s: TrackerState, ev: ami.GenericEvent, out: Out) -> None:
    """A CoreShowChannels list seen in the live stream is a full picture of the channels: channels
    missing from it are gone (their Hangup was missed). Only trusted when every item was seen."""
    action_id = ev.get("ActionID")
    items = s.lists.pop(action_id, [])
    started = s.list_start.pop(action_id, s.seq)
    try:
        expected = int(ev.get("ListItems", "-1"))
    except ValueError:
        return
    if expected != len(items):
        return
    try:
        # Events of channels born while the list was being written can arrive before its end:
        # only channels already known when the list began may be declared gone.
        listed = [i for i in items if isinstance(i, ami.CoreShowChannel)]
        reconcile_channels(s, listed, out, known_before=started)
    except Exception:
        log.exception("tracker.reconcile_failed")


def reconcile_channels(
    s: TrackerState, listed: Sequence[ami.CoreShowChannel], out: Out, known_before: int | None = None
) -> None:
    """Make the channel set exactly the listed one (adopting new channels, dropping vanished ones).

    ``known_before``: only channels first seen before this event number may be dropped (a live listing
    races with the events of channels created while it was written)."""
    present = set()
    for item in listed:
        ch = s.touch(item.snap, out)
        if ch is None:
            continue
        present.add(ch.uniqueid)
        if item.bridge_id:
            bridge = s.bridges.get(item.bridge_id)
            if bridge is None:
                bridge = s.bridges[item.bridge_id] = Bridge(item.bridge_id)
            join_bridge(s, ch, bridge)
        elif ch.bridge_id:
            old = s.bridges.get(ch.bridge_id)
            if old is not None:
                old.channels.discard(ch.uniqueid)
            ch.bridge_id = None
    for uid in [u for u, ch in s.channels.items() if u not in present
                and (known_before is None or ch.first_seq < known_before)]:  # fmt: skip
        remove_channel(s, uid, out, reason="vanished")
    for bridge_id in [b for b, bridge in s.bridges.items() if not bridge.channels]:
        del s.bridges[bridge_id]
    for call in s.calls.values():
        s.call_for(s.channels.get(call.call_id) or next(iter(_chans(s, call.channels)), None), out)
        if call.state == CallState.OFFERED and any(_bridged(s, u) for u in call.channels):
            s.set_state(call, CallState.ANSWERED, "resync: bridged")


def _chans(s: TrackerState, uids: Collection[str]) -> list[Channel]:
    return [s.channels[u] for u in sorted(uids) if u in s.channels]


def _bridged(s: TrackerState, uid: str) -> bool:
    ch = s.channels.get(uid)
    bridge = s.bridges.get(ch.bridge_id or "") if ch else None
    return bridge is not None and len(bridge.channels) > 1


def adopt_known(s: TrackerState, listed: Sequence[ami.CoreShowChannel], created: set[str]) -> None:
    """Calls of listed channels that callbridge offered before it restarted are taken over as they were:
    hotline (the channel may be in ``cb-to-110`` at ``s`` now), caller, answer and agent, already offered."""
    for item in listed:
        linkedid = item.snap.linkedid or item.snap.uniqueid
        known = s.known.get(linkedid)
        if known is None or linkedid in s.calls:
            continue
        created.add(linkedid)
        call = s.calls[linkedid] = new_call(linkedid, known.offered_ts or s.now)
        call.hotline, call.caller_num, call.offered = known.hotline, known.caller_num, True
        call.agent, call.queue, call.answered = known.agent, known.queue, known.answered_ts
        if known.answered_ts is not None:
            s.set_state(call, CallState.ANSWERED, "known before the restart")


def end_unobserved(s: TrackerState, out: Out) -> None:
    """Known calls the PBX no longer has ended while callbridge was down: end them once, now."""
    for call_id, known in sorted(s.known.items()):
        if call_id in s.calls:
            continue
        ended = max(known.last_seen, known.offered_ts)
        out.append(make.CallEnded(
            ts=ended, call_id=call_id, hotline=known.hotline, cause=None, cause_txt="", caller_num=known.caller_num,
            duration_s=round(max(0.0, ended - known.offered_ts), 3), reason=ENDED_UNOBSERVED,
            answered=known.answered_ts is not None,
        ))  # fmt: skip
        s.forget(call_id)
    s.known.clear()


def hotlines_left_on_the_pbx(s: TrackerState, listed: Sequence[ami.CoreShowChannel],
                             variables: dict[str, dict[str, str]], created: set[str]) -> None:  # fmt: skip
    """A call the tracker does not know yet whose first channel carries ``CB_HOTLINE`` (the rendered
    ``cb-inbound`` sets it) is offered on that hotline, wherever its caller is now (``cb-to-110`` at ``s``)."""
    for item in listed:
        uid = item.snap.uniqueid
        hotline = variables.get(uid, {}).get("CB_HOTLINE", "")
        if uid != (item.snap.linkedid or uid) or not _HOTLINE.fullmatch(hotline):
            continue
        call = s.calls.get(uid)
        if call is None and uid not in s.known and uid not in s.gone:
            created.add(uid)
            call = s.calls[uid] = new_call(uid, s.now)
        if call is not None and call.hotline is None:
            call.hotline = hotline


def apply_resync(s: TrackerState, events: Sequence[ami.AmiEvent], out: Out) -> None:
    """The whole resync: channels and calls first, then bridges, queues and rooms (which name channels)."""
    _resync_channels(s, events, out)
    _resync_bridges(s, events)
    _resync_queues(s, events, out)
    _resync_conferences(s, events, out)


def _resync_channels(s: TrackerState, events: Sequence[ami.AmiEvent], out: Out) -> None:
    channels = [e for e in events if isinstance(e, ami.CoreShowChannel)]
    variables: dict[str, dict[str, str]] = {}
    for e in events:
        if isinstance(e, ami.VarSet):
            variables.setdefault(e.snap.uniqueid, {})[e.variable.removeprefix("__")] = e.value
    created: set[str] = set()  # calls made here before their channels: one that got none is no call
    if s.known:
        adopt_known(s, channels, created)
    if variables:
        hotlines_left_on_the_pbx(s, channels, variables, created)
    reconcile_channels(s, channels, out)
    for call_id in [c for c in created if c in s.calls and not s.calls[c].channels]:
        del s.calls[call_id]
    for uid, values in variables.items():
        if (ch := s.channels.get(uid)) is not None:
            for name, value in values.items():
                ch.set_variable(name, value)
    if s.known:
        end_unobserved(s, out)


def _resync_bridges(s: TrackerState, events: Sequence[ami.AmiEvent]) -> None:
    # BridgeInfoChannel items carry no bridge id; it is in the BridgeInfoComplete of the same list.
    ids = {e.action_id: e.bridge.bridge_id for e in events if isinstance(e, ami.BridgeInfoComplete)}
    for e in events:
        if isinstance(e, ami.BridgeListItem) and e.bridge.bridge_id and e.bridge.bridge_id not in s.bridges:
            b = e.bridge
            s.bridges[b.bridge_id] = Bridge(b.bridge_id, b.bridge_type, b.technology, b.creator, b.name)
        elif isinstance(e, ami.BridgeInfoChannel):
            bridge_id = e.bridge_id or ids.get(e.action_id, "")
            ch = s.channels.get(e.snap.uniqueid)
            if bridge_id and ch is not None:
                bridge = s.bridges.get(bridge_id)
                if bridge is None:
                    bridge = s.bridges[bridge_id] = Bridge(bridge_id)
                join_bridge(s, ch, bridge)


def _resync_queues(s: TrackerState, events: Sequence[ami.AmiEvent], out: Out) -> None:
    """When QueueStatus answered, its lists replace what we knew."""
    params = {e.queue for e in events if isinstance(e, ami.QueueParams)}
    if params:
        entries = {(e.queue, e.uniqueid) for e in events if isinstance(e, ami.QueueEntry)}
        members = {(e.queue, e.interface or e.member_name) for e in events if isinstance(e, ami.QueueMember)}
        for name in [q for q in s.queues if q not in params]:
            del s.queues[name]
        for queue in s.queues.values():
            for uid in [u for u in queue.callers if (queue.name, u) not in entries]:
                del queue.callers[uid]
            for key in [k for k in queue.members if (queue.name, k) not in members]:
                del queue.members[key]
    for e in events:
        if isinstance(e, ami.QueueParams | ami.QueueEntry | ami.QueueMember):
            rooms.HANDLERS[type(e)](s, e, out)


def _resync_conferences(s: TrackerState, events: Sequence[ami.AmiEvent], out: Out) -> None:
    """Rooms keep only parties that still exist; list items add the ones we missed."""
    for e in events:
        if isinstance(e, ami.ConfbridgeList):
            rooms.HANDLERS[type(e)](s, e, out)
    for conf in list(s.conferences.values()):
        for uid in [u for u in conf.parties if u not in s.channels]:
            rooms.leave_conference(s, conf, uid, out)


_NOT_FACTS = ("settled", "call")


def _channel_json(ch: Channel) -> dict[str, object]:
    """A channel's fields without ``settled`` (the snapshot-skip flag) and ``call`` (its Linkedid's call, listed
    beside): neither is a fact about the channel."""
    out: dict[str, object] = {f.name: jsonable(getattr(ch, f.name)) for f in dataclasses.fields(ch)
                              if f.name not in _NOT_FACTS}  # fmt: skip
    out["variables"] = dict(ch.variables)
    return out


def state_as_json(s: TrackerState) -> dict[str, object]:
    return {
        "calls": {
            cid: {
                "call_id": c.call_id, "state": c.state.value, "caller_num": c.caller_num,
                "caller_name": c.caller_name, "hotline": c.hotline, "created": c.created, "answered": c.answered,
                "agent": c.agent, "queue": c.queue,
                "parties": [p.name for p in hops.parties(s, cid)],
            }
            for cid, c in sorted(s.calls.items())
        },
        "channels": {uid: _channel_json(ch) for uid, ch in sorted(s.channels.items())},
        "bridges": {bid: sorted(b.channels) for bid, b in sorted(s.bridges.items())},
        "queues": {
            name: {
                "callers": [jsonable(c) for c in q.ordered_callers()],
                "members": [jsonable(m) for _, m in sorted(q.members.items())],
                "offers": dict(sorted(q.offers.items())),
            }
            for name, q in sorted(s.queues.items())
        },
        "conferences": {
            room: [jsonable(p) for _, p in sorted(c.parties.items())] for room, c in sorted(s.conferences.items())
        },
    }  # fmt: skip
