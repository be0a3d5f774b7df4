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
  through them, and :meth:`CallTracker.parties` lists only real endpoints (:mod:`callbridge.calls.hops`).

How the code is laid out (imports go one way, down this list):

* :mod:`~callbridge.calls.state`: :class:`~callbridge.calls.state.TrackerState`, every store in one object,
  with the operations all handlers share (apply a channel snapshot, offer a call, change its state);
* :mod:`~callbridge.calls.hops` (who stands behind a Local pair), :mod:`~callbridge.calls.rooms` (queues,
  conferences), :mod:`~callbridge.calls.transfers`, :mod:`~callbridge.calls.dialing`,
  :mod:`~callbridge.calls.endings` (a channel or call ending), :mod:`~callbridge.calls.handlers` (the
  handler table of every AMI event class), :mod:`~callbridge.calls.resync`: functions of the state;
* this module: :class:`CallTracker`, the façade (``feed``, ``resync`` and the queries).

Whether expected state changes are logged at debug is decided when the tracker is built (see
:func:`callbridge.calls.debuglog.debug_enabled`): configure logging first.

Nothing here raises on odd input: every handler is wrapped, failures are logged and the stream goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import structlog

from callbridge.ami.event_types import AmiEvent, GenericEvent
from callbridge.calls import hops
from callbridge.calls.debuglog import debug_enabled
from callbridge.calls.handlers import HANDLERS
from callbridge.calls.model import Bridge, Call, Channel, Conference, KnownCall, Queue
from callbridge.calls.numbers import CHINA, NumberPlan
from callbridge.calls.resync import apply_resync, channels_listed, state_as_json
from callbridge.calls.state import HotlineOf, TrackerState
from callbridge.domain import DomainEvent

__all__ = ["UNTYPED_READ", "CallTracker", "HotlineOf"]

#: The event kinds without a typed class the tracker reads (as GenericEvent, by name): a live list's end. The
#: composition root hands the AMI client this, so the other untyped kinds are left out before decoding.
UNTYPED_READ = frozenset({"CoreShowChannelsComplete"})

log = structlog.get_logger("callbridge.calls")


class CallTracker:
    """Feed typed AMI events; get domain events; read the current picture from the read-only views."""

    def __init__(self, hotline_of: HotlineOf | None = None, clock: Callable[[], float] = time.time,
                 numbers: NumberPlan | None = CHINA) -> None:  # fmt: skip
        self._clock = clock
        #: The stores themselves, which the handlers change; consumers read the views below.
        self.state = TrackerState(
            hotline_of=hotline_of, normalise=numbers.normalise if numbers is not None else str,
            debug=debug_enabled(log),
        )  # fmt: skip
        state = self.state
        self.channels: Mapping[str, Channel] = MappingProxyType(state.channels)
        self.calls: Mapping[str, Call] = MappingProxyType(state.calls)
        self.bridges: Mapping[str, Bridge] = MappingProxyType(state.bridges)
        self.queues: Mapping[str, Queue] = MappingProxyType(state.queues)
        self.conferences: Mapping[str, Conference] = MappingProxyType(state.conferences)

    @property
    def known(self) -> dict[str, KnownCall]:
        """Calls callbridge offered before it restarted (its records): the composition root fills this before
        the first resync, which adopts or ends them (:mod:`.resync`) and empties it."""
        return self.state.known

    # --- feeding ---------------------------------------------------------------------------------

    def feed(self, ev: AmiEvent, now: float | None = None) -> list[DomainEvent]:
        """Apply one event; return the domain events it implies. Never raises."""
        if now is None:
            now = ev.timestamp
            if now is None:
                now = self._clock()
        state = self.state
        state.now = now
        state.seq += 1
        out: list[DomainEvent] = []
        handler = HANDLERS.get(type(ev))
        if handler is None:
            if isinstance(ev, GenericEvent) and ev.name in UNTYPED_READ:
                channels_listed(state, ev, out)
            return out
        try:
            handler(state, ev, out)
        except Exception:
            log.exception("tracker.event_failed", ami_event=ev.event_name)
        return out

    def resync(self, events: Sequence[AmiEvent], now: float | None = None) -> list[DomainEvent]:
        """Rebuild the picture from the list events of a post-connect resync (see :mod:`.resync`)."""
        self.state.now = now if now is not None else self._clock()
        out: list[DomainEvent] = []
        try:
            apply_resync(self.state, events, out)
        except Exception:
            log.exception("tracker.resync_failed")
        return out

    # --- queries ---------------------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        return self.state.channel_by_name(name)

    def channel(self, name_or_uniqueid: str) -> Channel | None:
        return self.state.channel(name_or_uniqueid)

    def call_of_channel(self, name_or_uniqueid: str) -> Call | None:
        ch = self.state.channel(name_or_uniqueid)
        return ch.call if ch else None

    def local_partner(self, ch: Channel) -> Channel | None:
        return self.state.local_partner(ch)

    def parties(self, call_id: str) -> list[Channel]:
        """The call's endpoints, caller first, each Local pair counted once (see :func:`.hops.parties`)."""
        return hops.parties(self.state, call_id)

    def bridge_peers(self, name_or_uniqueid: str) -> list[Channel]:
        """Who is bridged with this channel, looking through Local hops (see :func:`.hops.bridge_peers`)."""
        return hops.bridge_peers(self.state, name_or_uniqueid)

    def snapshot(self) -> dict[str, object]:
        """The whole picture as JSON-safe data (``callbridge replay --state``)."""
        return state_as_json(self.state)
