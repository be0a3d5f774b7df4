"""The tracker's state: every store it keeps, in one object the per-event handlers take.

:class:`TrackerState` holds the channels, calls, bridges, queues and rooms (public attributes: the handler
modules read and change them directly) and the few operations on them that every handler needs: applying a
channel snapshot (:meth:`TrackerState.touch`), offering a call, changing a call's state, remembering what
ended. What a handler does on top lives in its own module (:mod:`.handlers`, :mod:`.rooms`, :mod:`.dialing`,
:mod:`.transfers`, :mod:`.endings`, :mod:`.resync`); those modules import this one, never the reverse, and
:class:`~callbridge.calls.tracker.CallTracker` is the façade over it all.

The dicts are never replaced, only changed in place: the tracker hands out read-only views of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from callbridge.ami.event_types import AmiEvent, ChannelSnapshot, endpoint_of
from callbridge.calls import builders as make
from callbridge.calls import events as ce
from callbridge.calls.model import (
    Bridge,
    Call,
    CallState,
    Channel,
    Conference,
    KnownCall,
    Queue,
    is_expected,
    new_call,
    new_channel,
)
from callbridge.domain import DomainEvent

log = structlog.get_logger("callbridge.calls")
HotlineOf = Callable[[ChannelSnapshot], str | None]
Out = list[DomainEvent]
TOMBSTONES = 16384  # remembered hung-up uniqueids / ended call ids
_LISTS = 64  # unfinished AMI lists kept (their Complete may never come: attached mid-list)


@dataclass(slots=True, eq=False)
class TrackerState:
    """Everything the tracker knows, and the operations every handler shares."""

    hotline_of: HotlineOf | None = None
    normalise: Callable[[str], str] = str  # a caller's number as the PBX has it → as events carry it
    #: Whether expected state changes are logged at debug: asked once, when the tracker is built (logging is
    #: configured before), because asking structlog on every state change was a measurable share of ingest.
    debug: bool = False
    channels: dict[str, Channel] = field(default_factory=dict)  # by uniqueid
    by_name: dict[str, str] = field(default_factory=dict)  # channel name → uniqueid
    calls: dict[str, Call] = field(default_factory=dict)  # by call id (Linkedid)
    bridges: dict[str, Bridge] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    conferences: dict[str, Conference] = field(default_factory=dict)  # by room
    gone: OrderedDict[str, None] = field(default_factory=OrderedDict)  # hung-up uniqueids and ended call ids
    queues_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # uniqueid → queues it may be in (rooms)
    lists: dict[str, list[AmiEvent]] = field(default_factory=dict)  # list items by ActionID until *Complete
    list_start: dict[str, int] = field(default_factory=dict)  # ActionID → event number of its first item
    seq: int = 0  # events fed so far
    uptime: int | None = None  # the PBX's, from FullyBooted (-1 after a Shutdown)
    # calls callbridge offered before it restarted (its records), adopted at the first resync (.resync)
    known: dict[str, KnownCall] = field(default_factory=dict)
    now: float = 0.0  # time of the event being handled

    # --- looking up ------------------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        uid = self.by_name.get(name)
        return self.channels.get(uid) if uid else None

    def channel(self, name_or_uniqueid: str) -> Channel | None:
        return self.channels.get(name_or_uniqueid) or self.channel_by_name(name_or_uniqueid)

    def local_partner(self, ch: Channel) -> Channel | None:
        """The other half of a Local pair (``;1`` ↔ ``;2``), when it is there."""
        half = ch.local_half
        if not half:
            return None
        return self.channel_by_name(ch.name[:-1] + ("2" if half == "1" else "1"))

    # --- channels and calls ----------------------------------------------------------------------

    def touch(self, snap: ChannelSnapshot | None, out: Out, create: bool = True) -> Channel | None:
        """Update (or create) the channel a snapshot describes; ``None`` when it cannot or must not."""
        if snap is None:
            return None
        # One unpack instead of a dozen attribute reads.
        name, _, state_desc, caller_num, caller_name, connected_num, connected_name, context, exten, _, uid, _ = snap
        ch = self.channels.get(uid)
        if (
            ch is not None
            and ch.settled
            # Most events repeat their channel's snapshot, or change only what is not kept (the dialplan
            # priority, the numeric state beside its name): then applying it would change nothing. Compared
            # field by field with the channel, not with the last snapshot kept whole: at 100k calls that tuple
            # and the strings only it held (uniqueid, linkedid, priority) were cache misses on every event
            # and a tuple per channel (the per-event cost grew with the calls, issue 19.3).
            and connected_num == ch.connected_num
            and caller_num == ch.caller_num
            and (state_desc == ch.state_desc or not state_desc)
            and connected_name == ch.connected_name
            and caller_name == ch.caller_name
            and (name == ch.name or not name)
            and (not context or (context == ch.context and exten == ch.exten))
        ):
            return ch
        if not uid:
            return None
        if ch is None:
            ch = self._new_channel(snap, create)
            if ch is None:
                return None
        elif name and name != ch.name:  # Asterisk renames channels (masquerade)
            self.by_name.pop(ch.name, None)
            ch.name = name
            self.by_name[name] = uid
        if state_desc:
            ch.state_desc = state_desc
        ch.caller_num = caller_num
        ch.caller_name = caller_name
        ch.connected_num = connected_num
        ch.connected_name = connected_name
        if context:
            ch.context = context
            ch.exten = exten
        ch.settled = ch.role != "caller" or self._caller_updated(ch, snap, out)
        return ch

    def _new_channel(self, snap: ChannelSnapshot, create: bool) -> Channel | None:
        uid, name = snap.uniqueid, snap.channel
        if not create or uid in self.gone:
            return None
        linkedid = snap.linkedid or uid
        if linkedid in self.gone and linkedid not in self.calls:
            # A late event of an ended call. While the call lives on, its first channel (Uniqueid ==
            # Linkedid) may be gone and new legs still come: the caller's side transferred the agent.
            return None
        ch = new_channel(uid, name, linkedid, self.now, self.seq)
        self.channels[uid] = ch
        self.by_name[name] = uid
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = new_call(linkedid, self.now)
        call.channels.add(uid)
        ch.call = call
        ch.role = "caller" if uid == linkedid else "local" if name.startswith("Local/") else "agent"  # is_local
        if ch.role == "agent" and self.hotline_of is not None and self._safe_hotline(snap):
            ch.role = "trunk"
        return ch

    def _safe_hotline(self, snap: ChannelSnapshot) -> str | None:
        try:
            return self.hotline_of(snap) if self.hotline_of else None
        except Exception:
            log.exception("tracker.hotline_of_failed", channel=snap.channel)
            return None

    def _caller_updated(self, ch: Channel, snap: ChannelSnapshot, out: Out) -> bool:
        """Carry the caller's snapshot over to its call. True when the same snapshot again would change
        nothing more (the hotline is resolved or cannot be), so :meth:`touch` may skip it next time."""
        call = ch.call
        if call is None:
            return True
        num = ch.caller_num
        if num and num != call.raw_caller_num:  # the caller's number as the PBX has it now (a rewrite too)
            call.raw_caller_num = num
            normal, previous = self.normalise(num), call.caller_num
            if normal == num:
                normal = num  # one string for both (normalising builds a copy even when nothing changes)
            call.caller_num, call.caller_name = normal, ch.caller_name
            if call.offered and normal != previous:
                out.append(ce.CallerChanged(ts=self.now, call_id=call.call_id, hotline=call.hotline,
                                            caller_num=normal, caller_name=ch.caller_name, previous_num=previous,
                                            raw_num=num, channel=ch.name))  # fmt: skip
        call.caller_channel = ch.name
        settled = True
        if call.hotline is None and self.hotline_of is not None:
            call.hotline = self._safe_hotline(snap)
            settled = call.hotline is not None  # else asked again on every snapshot, as always
        if ch.caller_num and not call.offered:
            self.offer(call, out)
        return settled

    def offer(self, call: Call, out: Out) -> None:
        """Emit call.offered once (as soon as the caller's number is known, or before any later event)."""
        if call.offered:
            return
        call.offered = True
        caller = self.channels.get(call.call_id)
        out.append(
            make.CallOffered(
                ts=self.now, call_id=call.call_id, hotline=call.hotline, caller_num=call.caller_num,
                caller_name=call.caller_name, channel=caller.name if caller else "",
                endpoint=endpoint_of(caller.name) if caller else "", context=caller.context if caller else "",
                did=caller.exten if caller else "",
            )
        )  # fmt: skip

    def call_for(self, ch: Channel | None, out: Out) -> Call | None:
        """The channel's call, offered first so that consumers always see call.offered before the rest."""
        if ch is None:
            return None
        call = ch.call
        if call is not None and not call.offered:
            self.offer(call, out)
        return call

    def set_state(self, call: Call, new: CallState, why: str) -> None:
        """The one place call states change: checked against the table, never raising.

        Expected transitions are logged at debug only when debug is on: a filtered debug call still binds
        a logger through structlog's proxy, which was a measurable share of the ingest path.
        """
        old = call.state
        if old == new:
            return
        if not is_expected(old, new):
            log.info("call.unexpected_transition", call_id=call.call_id, old=old.value, new=new.value, why=why)
        elif self.debug:
            log.debug("call.transition", call_id=call.call_id, old=old.value, new=new.value, why=why)
        call.state = new

    def forget(self, key: str) -> None:
        """Remember a hung-up uniqueid or an ended call id (late events are ignored), the oldest forgotten
        beyond the bound: both kinds count against it, or ended call ids would pile up forever."""
        gone = self.gone
        gone[key] = None
        if len(gone) > TOMBSTONES:
            gone.popitem(last=False)

    def clear(self) -> int:
        """Forget everything but the tombstones (PBX restart); returns how many calls were dropped."""
        dropped = len(self.calls)
        for store in (self.channels, self.by_name, self.calls, self.bridges, self.queues,
                      self.queues_of, self.conferences, self.lists, self.list_start):  # fmt: skip
            store.clear()
        return dropped

    # --- AMI lists (items until their *Complete) ------------------------------------------------------

    def remember_list_item(self, ev: AmiEvent, action_id: str) -> list[AmiEvent]:
        items = self.lists.setdefault(action_id, [])
        self.list_start.setdefault(action_id, self.seq)
        items.append(ev)
        if len(self.lists) > _LISTS:  # lists whose Complete never came (attached mid-list)
            stale = next(iter(self.lists))
            self.lists.pop(stale)
            self.list_start.pop(stale, None)
        return items

    def take_list(self, action_id: str) -> list[AmiEvent]:
        self.list_start.pop(action_id, None)
        return self.lists.pop(action_id, [])


#: What every per-event handler is: ``(state, event, out) -> None``, appending the domain events it derives.
Handler = Callable[[TrackerState, Any, Out], None]
