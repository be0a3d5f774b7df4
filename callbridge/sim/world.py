"""The simulated PBX's state and the events every change emits (sans-IO).

``World`` owns channels and bridges and turns each change into the AMI events real Asterisk 22 emits,
in the order the recorded traces show. Event consumers (the AMI server, tests) subscribe with
:meth:`World.subscribe`; an event is ``(name, privilege, headers)``.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from callbridge.sim.bridges import AfterBridge, Bridge
from callbridge.sim.channels import CAUSE_TEXT, DOWN, RING, RINGING, UP, Channel, Naming
from callbridge.sim.clock import Scheduler

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

Headers = list[tuple[str, str]]
Event = tuple[str, str, Headers]
Listener = Callable[[Event], None]

CALL = "call,all"
DIALPLAN = "dialplan,all"
#: How long a Local ``;2``'s answer takes to reach its ``;1`` (the recorded race: about a millisecond).
LOCAL_ANSWER_S = 0.001


class World:
    def __init__(self, scheduler: Scheduler, epoch: int, counters: dict[str, int] | None = None) -> None:
        self.sched = scheduler
        self.naming = Naming(epoch, counters)
        self.channels: dict[str, Channel] = {}
        self.by_uniqueid: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.global_vars: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self.processed_calls = 0
        self.pbx: Pbx | None = None  # set by Pbx: the dialplan interpreter that runs channels
        self.hangup_hooks: list[Callable[[Channel], None]] = []
        self.silent: Callable[[], bool] | None = None
        # Device state of PJSIP endpoints (1 not in use, 2 in use, 6 ringing): app_queue follows it.
        self.device_listeners: list[Callable[[str, int], None]] = []

    # --- events ---------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, name: str, privilege: str, headers: Headers) -> None:
        event = (name, privilege, headers)
        for listener in list(self._listeners):
            listener(event)

    def chan_event(self, name: str, chan: Channel, extra: Headers | None = None, priv: str = CALL) -> None:
        if self.silent is not None and self.silent():
            return  # nobody listens: skip building the snapshot (bulk traffic without AMI clients)
        self.emit(name, priv, chan.snapshot() + (extra or []))

    # --- channels -------------------------------------------------------------------------------
    def new_channel(
        self,
        base: str,
        context: str,
        exten: str,
        *,
        uniqueid: str = "",
        linkedid: str = "",
        state: int = DOWN,
        suffix: str = "",
        cid: tuple[str, str] | None = None,
    ) -> Channel:
        tech = base.split("/", 1)[0]
        name = f"{base}-{suffix or self.naming.next_suffix(tech)}"
        uid = uniqueid or self.naming.next_uniqueid()
        chan = Channel(name, uid, linkedid or uid, context, exten, self.sched.now)
        chan.state = state
        if cid is not None:
            chan.cid_num, chan.cid_name = cid
        self.channels[name] = chan
        self.by_uniqueid[uid] = chan
        self.processed_calls += 1
        self.chan_event("Newchannel", chan)
        return chan

    def new_local_pair(
        self, exten: str, context: str, *, uid1: str = "", uid2: str = "", linkedid: str = ""
    ) -> tuple[Channel, Channel]:
        suffix = self.naming.next_suffix("Local")
        base = f"Local/{exten}@{context}"
        uid1 = uid1 or self.naming.next_uniqueid()
        one = self.new_channel(base, context, exten, uniqueid=uid1, linkedid=linkedid or uid1, suffix=suffix + ";1")
        two = self.new_channel(
            base, context, exten, uniqueid=uid2, linkedid=linkedid or uid1, state=RING, suffix=suffix + ";2"
        )
        one.partner, two.partner = two, one
        return one, two

    def find(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def set_state(self, chan: Channel, state: int) -> None:
        if chan.state == state or chan.hungup:
            return
        chan.state = state
        self.chan_event("Newstate", chan)
        if chan.endpoint and state in (RINGING, UP):
            self._device(chan.endpoint, 6 if state == RINGING else 2)

    def _device(self, endpoint: str, status: int) -> None:
        names = {6: "RINGING", 2: "INUSE", 1: "NOT_INUSE"}
        self.emit("DeviceStateChange", CALL, [("Device", f"PJSIP/{endpoint}"), ("State", names[status])])
        for listener in list(self.device_listeners):
            listener(f"PJSIP/{endpoint}", status)

    def set_callerid(self, chan: Channel, num: str, name: str) -> None:
        if (chan.cid_num, chan.cid_name) == (num, name) or chan.hungup:
            return
        chan.cid_num, chan.cid_name = num, name
        self.chan_event("NewCallerid", chan, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])

    def set_connected(self, chan: Channel, num: str, name: str) -> None:
        """Connected line update; on a Local ``;1`` it becomes the ``;2`` half's caller ID."""
        if (chan.conn_num, chan.conn_name) == (num, name) or chan.hungup:
            return
        chan.conn_num, chan.conn_name = num, name
        self.chan_event("NewConnectedLine", chan)
        partner = chan.partner
        if partner is not None:
            # Each half of a Local pair presents the other half's connected party as its caller,
            # and a connected-line update crosses the bridge that half is in.
            self.set_callerid(partner, num, name)
            bridge = partner.bridge
            if isinstance(bridge, Bridge) and not bridge.conference:
                for peer in bridge.peers_of(partner):
                    self.set_connected(peer, num, name)

    def set_var(self, chan: Channel | None, name: str, value: str) -> None:
        if chan is None:
            self.global_vars[name] = value
            return
        inherit = name.startswith("_")
        clean = name.lstrip("_")
        chan.vars[clean] = value
        if inherit:
            chan.vars.setdefault("__inherit__", "")
            names = set(filter(None, chan.vars["__inherit__"].split(",")))
            names.add(("__" if name.startswith("__") else "_") + clean)
            chan.vars["__inherit__"] = ",".join(sorted(names))
        self.chan_event("VarSet", chan, [("Variable", clean), ("Value", value)], DIALPLAN)

    def inherit_vars(self, parent: Channel, child: Channel) -> None:
        """``_VAR`` is inherited one level, ``__VAR`` for ever (Asterisk channel variable rules)."""
        for marked in filter(None, parent.vars.get("__inherit__", "").split(",")):
            clean = marked.lstrip("_")
            if clean in parent.vars:
                self.set_var(child, marked if marked.startswith("__") else clean, parent.vars[clean])

    # --- hang-up --------------------------------------------------------------------------------
    def hangup(
        self, chan: Channel, cause: int = 16, *, request: str = "", soft_cause: int = 16, tech_cause: int = 0
    ) -> None:
        """Hang ``chan`` up. ``request`` is "" (none), "soft" (SoftHangupRequest) or "hard" (HangupRequest)."""
        if chan.hungup:
            return
        tech = [("TechCause", str(tech_cause))] if tech_cause else []
        if request == "soft":
            self.chan_event("SoftHangupRequest", chan, [("Cause", str(soft_cause))])
        elif request == "hard":
            self.chan_event("HangupRequest", chan, [("Cause", str(cause)), *tech])
        chan.hungup = True
        chan.run_gen += 1
        chan.vars["HANGUPCAUSE"] = str(cause)
        waiter = chan.waiter
        chan.waiter = None
        if waiter is not None and hasattr(waiter, "on_hangup"):
            waiter.on_hangup(chan)
        bridge = chan.bridge
        if isinstance(bridge, Bridge):
            self.leave_bridge(bridge, chan, kick_peers=False)
        partner = chan.partner
        if partner is not None and not partner.hungup:
            self.chan_event("HangupRequest", partner, [("Cause", str(cause))])
            # An unknown cause (0) is not passed on: the other half clears normally (trace 20).
            self.sched.soon(lambda: self.hangup(partner, cause or 16, request="soft" if partner.app else ""))
        for hook in list(self.hangup_hooks):
            hook(chan)
        text = CAUSE_TEXT.get(cause, "Unknown")
        self.chan_event("Hangup", chan, [("Cause", str(cause)), ("Cause-txt", text), *tech])
        self.channels.pop(chan.name, None)
        self.by_uniqueid.pop(chan.uniqueid, None)
        if chan.endpoint and chan.tech == "PJSIP":
            prefix = f"PJSIP/{chan.endpoint}-"
            if not any(name.startswith(prefix) for name in self.channels):
                self._device(chan.endpoint, 1)
        if isinstance(bridge, Bridge):
            self._after_leave(bridge)

    def hangup_matching(self, pattern: str, hidden: list[str] | None = None) -> list[str]:
        """AMI ``Hangup Channel: /regex/``: soft hang-up of every match (hidden ones only listed)."""
        regex = re.compile(pattern)
        names = [name for name in self.channels if regex.search(name)]
        listed = names + [name for name in hidden or [] if regex.search(name)]
        # The AMI thread flags every match at once (SoftHangupRequest each), then each channel's
        # own thread hangs it up.
        for name in names:
            chan = self.channels.get(name)
            if chan is not None:
                self.chan_event("SoftHangupRequest", chan, [("Cause", "16")])
        for name in names:
            chan = self.channels.get(name)
            if chan is not None:
                self.sched.soon(functools.partial(self.hangup, chan, 16))
        return listed

    # --- bridges --------------------------------------------------------------------------------
    def create_bridge(self, kind: str = "basic", technology: str = "simple_bridge", conference: str = "") -> Bridge:
        bridge = Bridge(str(uuid.uuid4()), kind, technology)
        bridge.conference = conference
        self.bridges[bridge.uniqueid] = bridge
        self.emit("BridgeCreate", CALL, bridge.headers())
        return bridge

    def enter(self, bridge: Bridge, chan: Channel, after: AfterBridge, extra: Headers | None = None) -> None:
        old = chan.bridge
        if isinstance(old, Bridge):
            self.leave_bridge(old, chan, kick_peers=False)
        bridge.members.append(chan)
        bridge.after[chan.name] = after
        chan.bridge = bridge
        if not bridge.conference and len(bridge.members) > 1:
            # Bridged parties share the oldest party's Linkedid (no event announces it; trace 02).
            oldest = min(bridge.members, key=lambda m: m.created)
            for member in bridge.members:
                member.linkedid = oldest.linkedid
        self.emit("BridgeEnter", CALL, bridge.headers() + chan.snapshot() + (extra or []))
        if not bridge.conference:
            for member in bridge.members:
                peer = ",".join(m.name for m in bridge.peers_of(member))
                if peer:
                    self.set_var(member, "BRIDGEPEER", peer)
        if isinstance(old, Bridge):
            self._after_leave(old)

    def leave_bridge(self, bridge: Bridge, chan: Channel, *, kick_peers: bool) -> None:
        """``chan`` leaves ``bridge`` (BridgeLeave); with ``kick_peers`` a basic bridge left with one party
        dissolves. Consultations and transfers move channels between bridges with it."""
        if chan not in bridge.members:
            return
        if not bridge.conference:
            for member in bridge.members:
                self.set_var(member, "BRIDGEPEER", "")
        bridge.members.remove(chan)
        bridge.after.pop(chan.name, None)
        chan.bridge = None
        self.emit("BridgeLeave", CALL, bridge.headers() + chan.snapshot())
        if kick_peers:
            self._after_leave(bridge)

    def leave(self, chan: Channel, *, dissolve: bool = True) -> None:
        """Take ``chan`` out of its bridge without hanging it up (transfer, redirect, kick)."""
        bridge = chan.bridge
        if isinstance(bridge, Bridge):
            self.leave_bridge(bridge, chan, kick_peers=dissolve)

    def _after_leave(self, bridge: Bridge) -> None:
        """A basic bridge with one party left dissolves; the remaining party does its after-bridge."""
        if bridge.conference:
            return
        if len(bridge.members) == 1:
            last = bridge.members[0]
            after = bridge.after.get(last.name)
            self.leave_bridge(bridge, last, kick_peers=False)
            self.destroy_bridge(bridge)
            if after is not None:
                after(last)
        elif not bridge.members:
            self.destroy_bridge(bridge)

    def destroy_bridge(self, bridge: Bridge) -> None:
        if self.bridges.pop(bridge.uniqueid, None) is not None:
            self.emit("BridgeDestroy", CALL, bridge.headers())

    def dissolve(self, bridge: Bridge) -> list[Channel]:
        """Empty a bridge without running anyone's after-bridge action (transfers, redirects)."""
        members = list(bridge.members)
        bridge.after.clear()
        for member in members:
            self.leave_bridge(bridge, member, kick_peers=False)
        self.destroy_bridge(bridge)
        return members

    def bridge_two(self, a: Channel, b: Channel, after_a: AfterBridge, after_b: AfterBridge) -> Bridge:
        bridge = self.create_bridge()
        self.enter(bridge, a, after_a)
        self.enter(bridge, b, after_b)
        return bridge

    def answer(self, chan: Channel) -> None:
        """Answer a channel; a Local ``;2`` answering brings its ``;1`` up too, a moment later.

        As core_local does: the ``;2``'s answer is queued to ``;1`` as a control frame, read by whoever waits
        on ``;1`` (the outer Dial or Queue) on its next pass. So two ``;2`` halves answered within that moment
        are both Up before the outer side takes one and cancels the other (live: ``live_q120_local_hops_*``).
        """
        if chan.state == UP or chan.hungup:
            return
        self.set_state(chan, UP)
        if chan.partner is not None and not chan.is_local_one:
            one = chan.partner
            self.sched.call_later(LOCAL_ANSWER_S, lambda: self._local_one_answered(one))
            return
        self._answered(chan)

    def _local_one_answered(self, one: Channel) -> None:
        if one.state == UP or one.hungup:
            return
        self.set_state(one, UP)
        self._answered(one)

    @staticmethod
    def _answered(chan: Channel) -> None:
        waiter = chan.waiter
        if waiter is not None and hasattr(waiter, "on_answer"):
            waiter.on_answer(chan)

    def ringing(self, chan: Channel) -> None:
        if chan.state in (UP, RINGING) or chan.hungup:
            return
        self.set_state(chan, RINGING)
        target = chan.partner if chan.partner is not None and not chan.is_local_one else chan
        waiter = target.waiter if target is not None else None
        if waiter is not None and hasattr(waiter, "on_ringing"):
            waiter.on_ringing(target)

    def local_sync(self, one: Channel) -> None:
        """A Local ``;2`` presents its ``;1``'s connected line as caller ID and vice versa."""
        two = one.partner
        if two is None:
            return
        self.set_callerid(two, one.conn_num, one.conn_name)
        if (two.conn_num, two.conn_name) != (one.cid_num, one.cid_name):
            two.conn_num, two.conn_name = one.cid_num, one.cid_name
            self.chan_event("NewConnectedLine", two)

    def reset(self) -> None:
        self.channels.clear()
        self.by_uniqueid.clear()
        self.bridges.clear()
