"""The call-state tracker: typed AMI events in, domain events out. Pure: no I/O, no asyncio.

How the stream is read (tests/fixtures/asterisk-22/README.md explains the Asterisk behaviour behind it):

* A *call* is a Linkedid. Its originating channel (Uniqueid == Linkedid) is the caller.
* A channel is only *created* by events that prove it is alive (Newchannel, Dial*, BridgeEnter, queue and
  conference joins, list items …). Update-only events (NewCallerid, VarSet, *HangupRequest, BridgeLeave …)
  never create one, because Asterisk emits some of them *after* the Hangup of a Local half; creating a
  channel from them would leak a ghost call.
* Hung-up uniqueids and ended call ids are remembered (bounded) so that late or duplicated events are
  ignored instead of resurrecting them.
* Local channel pairs (``;1``/``;2``) are one logical hop: :meth:`CallTracker.bridge_peers` looks
  through them, and :meth:`CallTracker.parties` lists only real endpoints.
* Queue and conference handling lives in :mod:`callbridge.calls.rooms`, resync in
  :mod:`callbridge.calls.resync`.

Nothing here raises on odd input: every handler is wrapped, failures are logged and the stream goes on.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog

from callbridge.ami import events as ami
from callbridge.ami.events import ChannelSnapshot, endpoint_of
from callbridge.calls import builders as make
from callbridge.calls import events as ce
from callbridge.calls import rooms, transfers
from callbridge.calls.debuglog import debug_enabled as _debug_enabled
from callbridge.calls.model import (
    Bridge,
    Call,
    CallState,
    Channel,
    Conference,
    Queue,
    States,
    is_expected,
    new_call,
    new_channel,
)
from callbridge.calls.numbers import CHINA, NumberPlan
from callbridge.domain import DomainEvent

if TYPE_CHECKING:
    from callbridge.calls.resync import KnownCall

log = structlog.get_logger("callbridge.calls")
_VarSet = ami.VarSet
HotlineOf = Callable[[ChannelSnapshot], str | None]
_TOMBSTONES = 16384  # remembered hung-up uniqueids / ended call ids


class CallTracker:
    """Feed typed AMI events; get domain events; read the current picture from the read-only views."""

    def __init__(self, hotline_of: HotlineOf | None = None, clock: Callable[[], float] = time.time,
                 numbers: NumberPlan | None = CHINA) -> None:  # fmt: skip
        self._hotline_of = hotline_of
        self._normalise: Callable[[str], str] = numbers.normalise if numbers is not None else str
        self._clock = clock
        self._channels: dict[str, Channel] = {}
        self._by_name: dict[str, str] = {}  # channel name → uniqueid
        self._calls: dict[str, Call] = {}
        self._bridges: dict[str, Bridge] = {}
        self._queues: dict[str, Queue] = {}
        self._conferences: dict[str, Conference] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()  # hung-up uniqueids and ended call ids
        # uniqueid → the snapshot last applied to that live channel, when applying it again is a no-op:
        # most events repeat a channel's snapshot unchanged, and recognising that is one tuple compare.
        self._applied: dict[str, ChannelSnapshot] = {}
        self._queues_of: dict[str, set[str]] = {}  # uniqueid → queues it may wait in or be offered by (rooms)
        self._lists: dict[str, list[ami.AmiEvent]] = {}  # list items by ActionID until *Complete
        self._list_start: dict[str, int] = {}  # ActionID → sequence number of the list's first item
        self._seq = 0  # events fed so far
        self._uptime: int | None = None
        # calls callbridge offered before it restarted (its records), adopted at the first resync (.resync)
        self.known: dict[str, KnownCall] = {}
        self.channels: Mapping[str, Channel] = MappingProxyType(self._channels)
        self.calls: Mapping[str, Call] = MappingProxyType(self._calls)
        self.bridges: Mapping[str, Bridge] = MappingProxyType(self._bridges)
        self.queues: Mapping[str, Queue] = MappingProxyType(self._queues)
        self.conferences: Mapping[str, Conference] = MappingProxyType(self._conferences)
        self.now = 0.0  # time of the event being handled

    # --- public API ------------------------------------------------------------------------------

    def feed(self, ev: ami.AmiEvent, now: float | None = None) -> list[DomainEvent]:
        """Apply one event; return the domain events it implies. Never raises."""
        if now is None:
            now = ev.timestamp
            if now is None:
                now = self._clock()
        self.now = now
        self._seq += 1
        cls = type(ev)
        if cls in _SNAPSHOT_ONLY:
            # Many events only repeat a channel's snapshot (a trunk's Newstate Up, a VarSet of a variable
            # nobody reads): when it is the one last applied, there is nothing to do.
            snap: ChannelSnapshot = ev.snap  # type: ignore[attr-defined]  # every such class is a ChannelEvent
            if self._applied.get(snap[10]) == snap and (
                cls is not _VarSet or not ev.variable.startswith(_KEPT_VARIABLES)  # type: ignore[attr-defined]
            ):
                return []
        out: list[DomainEvent] = []
        handler = _HANDLERS.get(cls)
        if handler is None:
            if isinstance(ev, ami.GenericEvent) and ev.name == "CoreShowChannelsComplete":
                _channels_listed(self, ev, out)
            return out
        try:
            handler(self, ev, out)
        except Exception:
            log.exception("tracker.event_failed", ami_event=ev.event_name)
        return out

    def resync(self, events: Sequence[ami.AmiEvent], now: float | None = None) -> list[DomainEvent]:
        """Rebuild the picture from the list events of a post-connect resync (see :mod:`.resync`)."""
        from callbridge.calls.resync import apply_resync

        self.now = now if now is not None else self._clock()
        out: list[DomainEvent] = []
        try:
            apply_resync(self, events, out)
        except Exception:
            log.exception("tracker.resync_failed")
        return out

    def channel_by_name(self, name: str) -> Channel | None:
        uid = self._by_name.get(name)
        return self._channels.get(uid) if uid else None

    def channel(self, name_or_uniqueid: str) -> Channel | None:
        return self._channels.get(name_or_uniqueid) or self.channel_by_name(name_or_uniqueid)

    def call_of_channel(self, name_or_uniqueid: str) -> Call | None:
        ch = self.channel(name_or_uniqueid)
        return self._calls.get(ch.linkedid) if ch else None

    def parties(self, call_id: str) -> list[Channel]:
        """The call's endpoints, caller first, with each Local pair counted once: a pair is left out when
        a real channel stands behind it (its ``;2`` is bridged), and counted by its ``;1`` half when it
        ends in the dialplan (a phone simulated by ``Local/2001@sim``, an application)."""
        call = self._calls.get(call_id)
        if call is None:
            return []
        chans = [self._channels[u] for u in call.channels if u in self._channels]
        real = [c for c in chans if not c.is_local or c.role == "caller" or self._is_terminal_hop(c)]
        return sorted(real, key=lambda c: (c.role != "caller", c.created, c.uniqueid))

    def _is_terminal_hop(self, ch: Channel) -> bool:
        if ch.local_half != "1" or ch.fronts:
            return False  # ``fronts``: its ;2 dialled the real party, a hop
        partner = self.local_partner(ch)
        if partner is None or partner.state_desc != "Up":
            return False  # its ;2 is not there or has not answered in the dialplan: it may still dial someone
        bridge = self._bridges.get(partner.bridge_id or "")
        return bridge is None or len(bridge.channels) < 2

    def local_partner(self, ch: Channel) -> Channel | None:
        half = ch.local_half
        if not half:
            return None
        return self.channel_by_name(ch.name[:-1] + ("2" if half == "1" else "1"))

    def bridge_peers(self, name_or_uniqueid: str) -> list[Channel]:
        """Who is bridged with this channel, looking through Local hops (``;1`` in one bridge, ``;2`` in
        another) so that a caller bridged to ``Local/1002@internal;1`` sees the agent behind it. A hop
        with nobody behind it (a Local channel ending in the dialplan) is itself the peer."""
        start = self.channel(name_or_uniqueid)
        if start is None:
            return []
        return self._peers_of(start, {start.uniqueid})

    def _peers_of(self, ch: Channel, seen: set[str]) -> list[Channel]:
        peers: list[Channel] = []
        bridge = self._bridges.get(ch.bridge_id or "")
        for uid in sorted(bridge.channels) if bridge else ():
            peer = self._channels.get(uid)
            if peer is None or uid in seen:
                continue
            seen.add(uid)
            partner = self.local_partner(peer) if peer.is_local and peer.role != "caller" else None
            behind: list[Channel] = []
            if partner is not None and partner.uniqueid not in seen:
                seen.add(partner.uniqueid)
                behind = self._peers_of(partner, seen)
            peers.extend(behind or [peer])
        return peers

    def snapshot(self) -> dict[str, object]:
        """The whole picture as JSON-safe data (``callbridge replay --state``)."""
        from callbridge.calls.resync import state_as_json

        return state_as_json(self)

    # --- channels and calls ----------------------------------------------------------------------

    def touch(self, snap: ChannelSnapshot | None, out: list[DomainEvent], create: bool = True) -> Channel | None:
        """Update (or create) the channel a snapshot describes; ``None`` when it cannot or must not."""
        if snap is None:
            return None
        uid = snap[10]  # .uniqueid (hot: nearly every event touches one or two channels)
        ch = self._channels.get(uid)
        if ch is not None and self._applied.get(uid) == snap:
            return ch  # the very snapshot last applied: applying it again would change nothing
        # One unpack instead of a dozen attribute reads.
        name, _, state_desc, caller_num, caller_name, connected_num, connected_name, context, exten, _, _, _ = snap
        if not uid:
            return None
        if ch is None:
            if not create or uid in self._gone:
                return None
            linkedid = snap.linkedid or uid
            if linkedid in self._gone and linkedid not in self._calls:
                # A late event of an ended call. While the call lives on, its first channel (Uniqueid ==
                # Linkedid) may be gone and new legs still come: the caller's side transferred the agent.
                return None
            ch = new_channel(uid, name, linkedid, self.now, self._seq)
            self._channels[uid] = ch
            self._by_name[name] = uid
            call = self._calls.get(linkedid)
            if call is None:
                call = self._calls[linkedid] = new_call(linkedid, self.now)
            call.channels.add(uid)
            ch.role = "caller" if uid == linkedid else "local" if name.startswith("Local/") else "agent"  # is_local
            if ch.role == "agent" and self._hotline_of is not None and self._safe_hotline(snap):
                ch.role = "trunk"
        elif name and name != ch.name:  # Asterisk renames channels (masquerade)
            self._by_name.pop(ch.name, None)
            ch.name = name
            self._by_name[name] = uid
        if state_desc:
            ch.state_desc = state_desc
        ch.caller_num = caller_num
        ch.caller_name = caller_name
        ch.connected_num = connected_num
        ch.connected_name = connected_name
        if context:
            ch.context = context
            ch.exten = exten
        if ch.role != "caller" or self._caller_updated(ch, snap, out):
            self._applied[uid] = snap
        else:
            self._applied.pop(uid, None)
        return ch

    def _safe_hotline(self, snap: ChannelSnapshot) -> str | None:
        try:
            return self._hotline_of(snap) if self._hotline_of else None
        except Exception:
            log.exception("tracker.hotline_of_failed", channel=snap.channel)
            return None

    def _caller_updated(self, ch: Channel, snap: ChannelSnapshot, out: list[DomainEvent]) -> bool:
        """Carry the caller's snapshot over to its call. True when the same snapshot again would change
        nothing more (the hotline is resolved or cannot be), so :meth:`touch` may skip it next time."""
        call = self._calls.get(ch.linkedid)
        if call is None:
            return True
        num = ch.caller_num
        if num and num != call.raw_caller_num:  # the caller's number as the PBX has it now (a rewrite too)
            call.raw_caller_num = num
            normal, previous = self._normalise(num), call.caller_num
            call.caller_num, call.caller_name = normal, ch.caller_name
            if call.offered and normal != previous:
                out.append(ce.CallerChanged(ts=self.now, call_id=call.call_id, hotline=call.hotline,
                                            caller_num=normal, caller_name=ch.caller_name, previous_num=previous,
                                            raw_num=num, channel=ch.name))  # fmt: skip
        call.caller_channel = ch.name
        settled = True
        if call.hotline is None and self._hotline_of is not None:
            call.hotline = self._safe_hotline(snap)
            settled = call.hotline is not None  # else asked again on every snapshot, as always
        if ch.caller_num and not call.offered:
            self.offer(call, out)
        return settled

    def offer(self, call: Call, out: list[DomainEvent]) -> None:
        """Emit call.offered once (as soon as the caller's number is known, or before any later event)."""
        if call.offered:
            return
        call.offered = True
        caller = self._channels.get(call.call_id)
        out.append(
            make.CallOffered(
                ts=self.now, call_id=call.call_id, hotline=call.hotline, caller_num=call.caller_num,
                caller_name=call.caller_name, channel=caller.name if caller else "",
                endpoint=endpoint_of(caller.name) if caller else "", context=caller.context if caller else "",
                did=caller.exten if caller else "",
            )
        )  # fmt: skip

    def call_for(self, ch: Channel | None, out: list[DomainEvent]) -> Call | None:
        """The channel's call, offered first so that consumers always see call.offered before the rest."""
        if ch is None:
            return None
        call = self._calls.get(ch.linkedid)
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
        elif _debug_enabled():
            log.debug("call.transition", call_id=call.call_id, old=old.value, new=new.value, why=why)
        call.state = new

    def remove_channel(self, uid: str, out: list[DomainEvent], cause: int | None = None, cause_txt: str = "",
                       reason: str = "hangup", tech_cause: str = "") -> None:  # fmt: skip
        """Forget a channel (hang-up or vanished); end its call when it was the call's last channel."""
        ch = self._channels.pop(uid, None)
        self._applied.pop(uid, None)
        self._forget(uid)
        if ch is None:
            return
        if self._by_name.get(ch.name) == uid:
            del self._by_name[ch.name]
        if ch.bridge_id:  # mostly None by now (BridgeLeave came first); "" is never a bridge id
            bridge = self._bridges.get(ch.bridge_id)
            if bridge is not None:
                bridge.channels.discard(uid)
        rooms.channel_gone(self, ch, out)
        call = self._calls.get(ch.linkedid)
        if call is None:
            return
        call.channels.discard(uid)
        if ch.role == "caller" or call.cause is None:
            call.cause, call.cause_txt = cause, cause_txt
        if call.transfers:
            transfers.channel_gone(self, call, ch, cause, tech_cause, out)
        if not call.channels:
            self.end_call(call, out, reason)

    def _forget(self, key: str) -> None:
        """Remember a hung-up uniqueid or an ended call id (late events are ignored), the oldest forgotten
        beyond the bound: both kinds count against it, or ended call ids would pile up forever."""
        gone = self._gone
        gone[key] = None
        if len(gone) > _TOMBSTONES:
            gone.popitem(last=False)

    def end_call(self, call: Call, out: list[DomainEvent], reason: str) -> None:
        if not call.offered:
            self.offer(call, out)
        if call.transfers:
            transfers.call_ended(self, call, out)
        reason = "pickup" if call.picked_up and reason == "hangup" else reason  # the picker's own leg
        self.set_state(call, States.ENDED, reason)
        del self._calls[call.call_id]
        self._forget(call.call_id)
        lasted = self.now - call.created
        out.append(
            make.CallEnded(
                ts=self.now, call_id=call.call_id, hotline=call.hotline, cause=call.cause, cause_txt=call.cause_txt,
                # max(0.0, lasted) without the builtin call: 0.0 too when lasted is 0.0, -0.0 or NaN
                duration_s=round(lasted if lasted > 0.0 else 0.0, 3), caller_num=call.caller_num, reason=reason,
                answered=call.answered is not None or call.picked_up,
            )
        )  # fmt: skip

    def clear(self) -> int:
        """Forget everything (PBX restart); returns how many calls were dropped."""
        dropped = len(self._calls)
        stores: tuple[dict[str, Any], ...] = (self._channels, self._applied, self._by_name, self._calls, self._bridges,
                                              self._queues, self._queues_of, self._conferences, self._lists,
                                              self._list_start)  # fmt: skip
        for store in stores:
            store.clear()
        return dropped

    def remember_list_item(self, ev: ami.AmiEvent, action_id: str) -> list[ami.AmiEvent]:
        items = self._lists.setdefault(action_id, [])
        self._list_start.setdefault(action_id, self._seq)
        items.append(ev)
        if len(self._lists) > 64:  # lists whose Complete never came (attached mid-list)
            stale = next(iter(self._lists))
            self._lists.pop(stale)
            self._list_start.pop(stale, None)
        return items

    def take_list(self, action_id: str) -> list[ami.AmiEvent]:
        self._list_start.pop(action_id, None)
        return self._lists.pop(action_id, [])


# The handlers need CallTracker, hence the late imports.
from callbridge.calls.handlers import HANDLERS as _HANDLERS  # noqa: E402
from callbridge.calls.handlers import KEPT_VARIABLES as _KEPT_VARIABLES  # noqa: E402
from callbridge.calls.handlers import SNAPSHOT_ONLY as _SNAPSHOT_ONLY  # noqa: E402
from callbridge.calls.resync import channels_listed as _channels_listed  # noqa: E402
