"""Queue and ConfBridge handling of the tracker (waiting callers, members, rooms and their parties).

Asterisk facts relied on: ``Priority`` in QueueCaller*/Agent* events is the *dialplan* priority, so the
queue priority (QUEUE_PRIO) is only taken from ``QueueEntry``; no event tells a waiting caller that its
position moved, so positions are recomputed when someone ahead leaves; the ConfBridge announcer
``CBAnn/<room>`` is a member of the room's bridge but never a party.
"""

from __future__ import annotations

import functools

from callbridge.ami import event_types as ami
from callbridge.calls import builders as make
from callbridge.calls import dialing
from callbridge.calls import events as ce
from callbridge.calls.model import (
    Call,
    Channel,
    Conference,
    ConferenceParty,
    Queue,
    QueueCaller,
    QueueMemberState,
    States,
    new_queue_caller,
)
from callbridge.calls.state import Handler, Out, TrackerState

S = States  # not CallState: see States
ANNOUNCER_PREFIX = "CBAnn/"
_INDEX_SLACK = 4096  # entries of uniqueids that are not live channels tolerated before the index is rebuilt
# Agent* events that (re)create the channels they name: AgentCalled and AgentConnect.
_CALLED, _CONNECT = ami.AgentCalled, ami.AgentConnect


def queue_of(s: TrackerState, name: str) -> Queue:
    queue = s.queues.get(name)
    if queue is None:
        queue = s.queues[name] = Queue(name)
    return queue


def _index(s: TrackerState, uid: str, queue: str) -> None:
    """Note that ``uid`` may now wait in or be offered by ``queue``, so :func:`channel_gone` looks only there.

    The index may hold more than is true (it is not trimmed when a caller leaves normally), never less;
    uniqueids that never hang up as a tracked channel are dropped by rebuilding it from the queues."""
    queues = s.queues_of.get(uid)
    if queues is not None:
        if queue not in queues:
            s.queues_of[uid] = (*queues, queue)
        return
    if len(s.queues_of) > len(s.channels) + _INDEX_SLACK:
        rebuilt: dict[str, tuple[str, ...]] = {}
        for q in s.queues.values():
            for u in (*q.callers, *q.offers.values()):
                known = rebuilt.get(u, ())
                rebuilt[u] = known if q.name in known else (*known, q.name)
        s.queues_of.clear()
        s.queues_of.update(rebuilt)
    s.queues_of[uid] = _alone(queue)


@functools.lru_cache(maxsize=1024)
def _alone(queue: str) -> tuple[str]:
    """One shared ``(queue,)`` per queue name: nearly every indexed channel is in one queue only, and a tuple
    of its own (or a set: 216 bytes) per channel was memory for nothing."""
    return (queue,)


def _caller_join(s: TrackerState, ev: ami.QueueCallerJoin, out: Out) -> None:
    snap = ev.snap  # read once: a snapshot field costs a descriptor call per read
    ch = s.touch(snap, out)
    call = s.call_for(ch, out)
    queue_name = ev.queue
    queue = s.queues.get(queue_name) or queue_of(s, queue_name)
    uid = snap.uniqueid
    if uid in queue.callers:
        return  # duplicate
    _index(s, uid, queue_name)
    now, position, count, caller_num, channel = s.now, ev.position, ev.count, snap.caller_num, snap.channel
    caller_num = _caller_num(s, call, ch, snap)  # the caller's number normalised, as in every call event
    queue.callers[uid] = waiting = new_queue_caller(uid, channel, caller_num, position, now, snap.linkedid)
    placed(queue, waiting)
    call_id = call.call_id if call else snap.linkedid or None
    hotline = call.hotline if call else None
    if call is not None:
        call.queue = queue_name
        s.set_state(call, S.QUEUED, "QueueCallerJoin")
        out.append(make.CallQueued(ts=now, call_id=call_id, hotline=hotline, queue=queue_name, position=position,
                                   count=count, caller_num=caller_num, channel=channel))  # fmt: skip
    out.append(make.QueueJoined(ts=now, call_id=call_id, hotline=hotline, queue=queue_name, position=position,
                                count=count, caller_num=caller_num, channel=channel))  # fmt: skip


def _caller_num(s: TrackerState, call: Call | None, ch: Channel | None, snap: ami.ChannelSnapshot) -> str:
    """A waiting caller's number: the call's (normalised) when it is the call's own channel; the number a
    transfer leg carries (``CB_CALLER_NUM``, which cb-to-<n> / cb-expert-<n> set as its caller ID just
    before ``Queue()``) when it has one. Not the leg's caller ID: an attended transfer's connected-line
    update reaches the Local ;2 from the transfer thread (core_unreal.c) and may land after that Set and
    before the join, making the leg the sending agent again (docs/events.md)."""
    if call is None or not call.caller_num:
        return snap.caller_num
    if call.call_id == snap.uniqueid:
        return call.caller_num
    carried = ch.variables.get("CB_CALLER_NUM", "") if ch is not None else ""
    if not carried:
        return snap.caller_num
    return call.caller_num if carried == call.raw_caller_num else s.normalise(carried)


def remove_caller(queue: Queue, uid: str) -> QueueCaller | None:
    """Take a caller out of the queue; those behind it move up one (Asterisk does not announce the move-up).

    The scan for those behind is skipped when nobody can be (the caller was at or behind :attr:`Queue.top`,
    an upper bound of the positions kept by the joins and by each scan): a queue of thousands of waiting
    callers made every leave a pass over all of them, the one per-event cost that grew with the calls."""
    gone = queue.callers.pop(uid, None)
    if gone is not None:
        left = gone.position  # read once: a busy queue has many callers behind
        if left < queue.top:
            top = 0
            for other in queue.callers.values():
                position = other.position
                if position > left:
                    position -= 1
                    other.position = position
                if position > top:
                    top = position
            queue.top = top  # exact again
    return gone


def placed(queue: Queue, caller: QueueCaller) -> None:
    """A caller's position was set (a join, a QueueEntry): keep :attr:`Queue.top` a bound."""
    if caller.position > queue.top:
        queue.top = caller.position


def _caller_leave(s: TrackerState, ev: ami.QueueCallerLeave, out: Out) -> None:
    snap = ev.snap
    ch = s.touch(snap, out, False)
    queue = s.queues.get(ev.queue)
    if queue is None or remove_caller(queue, snap.uniqueid) is None:
        return  # duplicate or attached after the join
    call = s.call_for(ch, out)
    caller_num = _caller_num(s, call, ch, snap)
    out.append(make.QueueLeft(ts=s.now, call_id=call.call_id if call else snap.linkedid or None,
                              hotline=call.hotline if call else None, queue=ev.queue, position=ev.position,
                              count=ev.count, caller_num=caller_num, channel=snap.channel))  # fmt: skip
    if call is not None and call.state == S.QUEUED:
        s.set_state(call, S.OFFERED, "QueueCallerLeave")


def _caller_abandon(s: TrackerState, ev: ami.QueueCallerAbandon, out: Out) -> None:
    ch = s.touch(ev.snap, out, create=False)
    queue = s.queues.get(ev.queue)
    waiting = queue.callers.get(ev.snap.uniqueid) if queue else None
    if queue is not None and (waiting is None or waiting.abandoned):
        return  # duplicate (the Leave already came, or the same Abandon twice)
    if waiting is not None:
        waiting.abandoned = True
    call = s.call_for(ch, out)
    out.append(make.QueueAbandoned(ts=s.now, call_id=call.call_id if call else ev.snap.linkedid or None,
                                 hotline=call.hotline if call else None, queue=ev.queue, position=ev.position,
                                 original_position=ev.original_position, hold_s=ev.hold_time,
                                 caller_num=_caller_num(s, call, ch, ev.snap), channel=ev.snap.channel))  # fmt: skip


def _entry(s: TrackerState, ev: ami.QueueEntry, out: Out) -> None:
    if ev.uniqueid in s.gone:
        return
    queue = queue_of(s, ev.queue)
    caller = queue.callers.get(ev.uniqueid)
    if caller is None:
        ch = s.channels.get(ev.uniqueid)
        _index(s, ev.uniqueid, ev.queue)
        caller = queue.callers[ev.uniqueid] = QueueCaller(
            uniqueid=ev.uniqueid, channel=ev.channel, caller_num=ev.caller_num, position=ev.position,
            joined=s.now - ev.wait, call_id=ch.linkedid if ch else "",
        )  # fmt: skip
    caller.position = ev.position
    caller.priority = ev.priority
    placed(queue, caller)


def _agent(s: TrackerState, ev: ami.AgentEvent, out: Out) -> None:
    """A queue offers a caller to a member (AgentCalled) until it is taken or not (Connect/RingNoAnswer)."""
    # type() identity rather than isinstance: the tracker dispatches on the exact class anyway, and Agent*
    # events are a tenth of the stream.
    kind = type(ev)
    offering = kind is _CALLED or kind is _CONNECT
    snap = ev.snap
    queue_name = ev.queue
    caller = s.touch(snap, out, offering)
    agent = s.touch(ev.dest, out, offering)
    if agent is not None:
        agent.queue = queue_name
    call = s.call_for(caller, out)
    if call is not None:
        call.queue = queue_name
        if kind is _CONNECT and caller is not None and agent is not None:
            dialing.connected(s, call, caller, agent, out)
    if not queue_name:
        return
    queue = s.queues.get(queue_name) or queue_of(s, queue_name)
    key = ev.interface or ev.member_name
    uid = snap.uniqueid
    if kind is _CALLED:
        _index(s, uid, queue_name)
        offer(queue, key, uid)
    elif queue.offers.get(key) == uid:
        withdraw(queue, key)


def offer(queue: Queue, key: str, uid: str) -> None:
    """The member ``key`` rings the caller ``uid`` (instead of whom it rang before, if anyone)."""
    before = queue.offers.get(key)
    if before == uid:
        return
    if before is not None:
        _unindex_offer(queue, before, key)
    queue.offers[key] = uid
    keys = queue.offered.get(uid)
    queue.offered[uid] = (key,) if keys is None else (*keys, key)


def withdraw(queue: Queue, key: str) -> None:
    """The member ``key`` no longer rings anyone (it answered, or its ringing ended)."""
    uid = queue.offers.pop(key, None)
    if uid is not None:
        _unindex_offer(queue, uid, key)


def _unindex_offer(queue: Queue, uid: str, key: str) -> None:
    keys = queue.offered.get(uid, ())
    rest = tuple(k for k in keys if k != key)
    if rest:
        queue.offered[uid] = rest
    else:
        queue.offered.pop(uid, None)


def _params(s: TrackerState, ev: ami.QueueParams, out: Out) -> None:
    queue_of(s, ev.queue).strategy = ev.strategy


_CHANGES = {
    ami.QueueMemberAdded: "added",
    ami.QueueMemberRemoved: "removed",
    ami.QueueMemberPause: "pause",
    ami.QueueMemberStatus: "status",
}


def _member(s: TrackerState, ev: ami.QueueMemberEvent, out: Out) -> None:
    queue = queue_of(s, ev.queue)
    key = ev.interface or ev.member_name
    change = _CHANGES.get(type(ev), "")
    member = queue.members.get(key)
    if change == "removed":
        if queue.members.pop(key, None) is None:
            return
    elif member is None:
        member = queue.members[key] = QueueMemberState(key, ev.member_name, ev.status, ev.paused, ev.in_call)
    elif (member.status, member.paused, member.in_call) == (ev.status, ev.paused, ev.in_call):
        return  # no change (duplicates, QueueMember list refresh)
    else:
        member.status, member.paused, member.in_call = ev.status, ev.paused, ev.in_call
    if isinstance(ev, ami.QueueMember):
        return  # list refresh: state only
    out.append(ce.QueueMemberChanged(ts=s.now, queue=ev.queue, member=ev.member_name, interface=ev.interface,
                                     status=ev.status, paused=ev.paused, change=change))  # fmt: skip


def conference_of(s: TrackerState, room: str, bridge_id: str, out: Out) -> Conference:
    conf = s.conferences.get(room)
    if conf is None:
        conf = s.conferences[room] = Conference(room, bridge_id)
        out.append(ce.ConferenceStarted(ts=s.now, room=room))
    if bridge_id:
        conf.bridge_id = bridge_id
    return conf


def _conf_start(s: TrackerState, ev: ami.ConfbridgeStart, out: Out) -> None:
    conference_of(s, ev.conference, ev.bridge.bridge_id, out)


def _conf_end(s: TrackerState, ev: ami.ConfbridgeEnd, out: Out) -> None:
    if s.conferences.pop(ev.conference, None) is not None:
        out.append(ce.ConferenceEnded(ts=s.now, room=ev.conference))


def _conf_join(s: TrackerState, ev: ami.ConfbridgeJoin, out: Out) -> None:
    if ev.snap.channel.startswith(ANNOUNCER_PREFIX):
        return
    ch = s.touch(ev.snap, out)
    conf = conference_of(s, ev.conference, ev.bridge.bridge_id, out)
    if ev.snap.uniqueid in conf.parties:
        return
    call = s.call_for(ch, out)
    conf.parties[ev.snap.uniqueid] = ConferenceParty(
        ev.snap.uniqueid, ev.snap.channel, ev.snap.caller_num, ev.snap.caller_name, ev.snap.linkedid, ev.admin, ev.muted
    )
    if call is not None:
        s.set_state(call, S.CONFERENCE, "ConfbridgeJoin")
    out.append(ce.ConferenceJoined(ts=s.now, call_id=call.call_id if call else None,
                                   hotline=call.hotline if call else None, room=ev.conference,
                                   channel=ev.snap.channel, party_num=ev.snap.caller_num,
                                   party_name=ev.snap.caller_name, count=len(conf.parties)))  # fmt: skip


def leave_conference(s: TrackerState, conf: Conference, uid: str, out: Out) -> None:
    party = conf.parties.pop(uid, None)
    if party is None:
        return
    call = s.calls.get(party.call_id)
    if call is not None and call.state == S.CONFERENCE:
        s.set_state(call, S.ANSWERED, "ConfbridgeLeave")
    out.append(ce.ConferenceLeft(ts=s.now, call_id=party.call_id or None, hotline=call.hotline if call else None,
                                 room=conf.room, channel=party.channel, party_num=party.num,
                                 count=len(conf.parties)))  # fmt: skip
    if not conf.parties:  # the last party left: the room is over (ConfbridgeEnd follows and is then a no-op)
        s.conferences.pop(conf.room, None)
        out.append(ce.ConferenceEnded(ts=s.now, room=conf.room))


def _conf_leave(s: TrackerState, ev: ami.ConfbridgeLeave, out: Out) -> None:
    s.touch(ev.snap, out, create=False)
    conf = s.conferences.get(ev.conference)
    if conf is not None:
        leave_conference(s, conf, ev.snap.uniqueid, out)


def _conf_list(s: TrackerState, ev: ami.ConfbridgeList, out: Out) -> None:
    """A list item refreshes the picture without announcing anything (resync semantics)."""
    if ev.snap.channel.startswith(ANNOUNCER_PREFIX) or ev.snap.uniqueid in s.gone:
        return
    s.touch(ev.snap, out)
    conf = s.conferences.get(ev.conference)
    if conf is None:
        conf = s.conferences[ev.conference] = Conference(ev.conference)
    if ev.snap.uniqueid not in conf.parties:
        conf.parties[ev.snap.uniqueid] = ConferenceParty(
            ev.snap.uniqueid, ev.snap.channel, ev.snap.caller_num, ev.snap.caller_name, ev.snap.linkedid,
            ev.admin, ev.muted,
        )  # fmt: skip


def channel_gone(s: TrackerState, ch: Channel, out: Out) -> None:
    """A channel hung up or vanished: take it out of queues and rooms (announcing what was missed)."""
    uid = ch.uniqueid
    # Runs on every Hangup: only the queues the index names are looked at (most channels are in none).
    for name in s.queues_of.pop(uid, ()):
        queue = s.queues.get(name)
        if queue is None:
            continue
        if uid in queue.callers:
            remove_caller(queue, uid)
        # the reverse index, not a pass over the queue's offers: a queue may have hundreds of members
        for key in queue.offered.pop(uid, ()):
            if queue.offers.get(key) == uid:
                del queue.offers[key]
    if s.conferences:
        for conf in list(s.conferences.values()):
            if uid in conf.parties:
                leave_conference(s, conf, uid, out)


HANDLERS: dict[type[ami.AmiEvent], Handler] = {
    ami.QueueCallerJoin: _caller_join,
    ami.QueueCallerLeave: _caller_leave,
    ami.QueueCallerAbandon: _caller_abandon,
    ami.QueueEntry: _entry,
    ami.AgentCalled: _agent,
    ami.AgentConnect: _agent,
    ami.AgentComplete: _agent,
    ami.AgentRingNoAnswer: _agent,
    ami.QueueParams: _params,
    ami.QueueMemberAdded: _member,
    ami.QueueMemberRemoved: _member,
    ami.QueueMemberPause: _member,
    ami.QueueMemberStatus: _member,
    ami.QueueMember: _member,
    ami.ConfbridgeStart: _conf_start,
    ami.ConfbridgeEnd: _conf_end,
    ami.ConfbridgeJoin: _conf_join,
    ami.ConfbridgeLeave: _conf_leave,
    ami.ConfbridgeList: _conf_list,
}
