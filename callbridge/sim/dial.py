"""Outbound legs (Local pairs, PJSIP endpoints and trunks) and app_dial's state machine.

Shared by the Dial application, Originate and Queue. A leg's far end is played by its endpoint's
:class:`~callbridge.sim.endpoints.Behaviour`; the outcome reaches the :class:`DialAttempt` through the
channel's ``waiter`` (``on_ringing`` / ``on_answer`` / ``on_hangup``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from callbridge.sim.channels import UP, Channel
from callbridge.sim.clock import Timer
from callbridge.sim.endpoints import REFUSAL, Endpoint, dial_status_for_cause
from callbridge.sim.predial import run_predial

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

CALL = "call,all"


class LegError(Exception):
    """No channel could be created (unknown endpoint, contact unavailable, trunk full)."""

    def __init__(self, cause: int) -> None:
        super().__init__(cause)
        self.cause = cause


def parse_target(target: str) -> tuple[str, str]:
    """``PJSIP/12345@hotline-12345`` → ("PJSIP", "12345@hotline-12345")."""
    tech, _, data = target.strip().partition("/")
    return tech, data


def make_leg(
    pbx: Pbx,
    target: str,
    *,
    caller: Channel | None,
    cid: tuple[str, str] | None = None,
    uniqueid: str = "",
    otherid: str = "",
    predial: tuple[str, str, int] | None = None,
) -> Channel:
    """Create the outbound channel for ``target`` and start its far end; raises :class:`LegError`.

    *predial*: a handler (Queue's ``b()``) run on the new channel once it has the caller's ids, before it
    is called (:mod:`callbridge.sim.predial`)."""
    tech, data = parse_target(target)
    if tech == "Local":
        return _local_leg(pbx, data, caller, cid, (uniqueid, otherid), predial)
    if tech != "PJSIP":
        raise LegError(66)  # AST_CAUSE_BEARERCAPABILITY_NOTAVAIL: no such channel technology here
    world = pbx.world
    number, _, ep_name = data.partition("@")
    ep = _endpoint_for_call(pbx, ep_name or number)
    agent_cid = (ep.callerid_num, ep.callerid_name) if ep.kind == "agent" and ep.callerid_num else None
    chan = world.new_channel(f"PJSIP/{ep.name}", ep.context, "s", uniqueid=uniqueid,
                             linkedid=caller.linkedid if caller is not None else "", cid=agent_cid)
    chan.endpoint = ep.name
    ep.active += 1
    if caller is not None:
        world.inherit_vars(caller, chan)
        chan.exten = caller.exten
        if agent_cid is None:
            world.set_callerid(chan, number if ep_name else (ep.callerid_num or number), number)
        world.set_connected(chan, caller.cid_num, caller.cid_name)
        if predial is not None:
            run_predial(pbx, chan, predial)
    elif cid is not None:
        world.set_callerid(chan, *cid)
        world.set_connected(chan, *cid)
    play_far_end(pbx, chan, ep)
    return chan


def _endpoint_for_call(pbx: Pbx, name: str) -> Endpoint:
    """The endpoint a PJSIP leg goes to; raises :class:`LegError` with chan_pjsip's cause when it cannot."""
    ep = pbx.endpoints.get(name)
    if ep is None:
        raise LegError(3)
    if ep.behaviour.mode == "down":
        # A qualified contact that is unavailable: chan_pjsip refuses before creating a channel (16d).
        raise LegError(20)
    if ep.capacity and ep.active >= ep.capacity:
        raise LegError(34)
    return ep


def _local_leg(
    pbx: Pbx,
    data: str,
    caller: Channel | None,
    cid: tuple[str, str] | None,
    uids: tuple[str, str],
    predial: tuple[str, str, int] | None,
) -> Channel:
    """``Local/exten@context``: the pair, ``;1`` returned, ``;2`` started in the context."""
    world = pbx.world
    dest, _, _opts = data.partition("/")
    exten, _, context = dest.partition("@")
    context = context or "default"
    linkedid = caller.linkedid if caller is not None else ""
    one, two = world.new_local_pair(exten, context, uid1=uids[0], uid2=uids[1], linkedid=linkedid)
    if caller is not None:
        world.inherit_vars(caller, one)
        world.inherit_vars(caller, two)
        world.set_callerid(one, exten, exten)
        world.set_connected(one, caller.cid_num, caller.cid_name)
        if predial is not None:
            run_predial(pbx, one, predial)  # before the call: ;2's caller id is ;1's connected line
        world.local_sync(one)
    elif cid is not None:
        world.set_callerid(one, *cid)
        world.set_connected(one, *cid)
        world.local_sync(one)
    world.emit("LocalBridge", CALL, one.snapshot("LocalOne") + two.snapshot("LocalTwo") + [
        ("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")])
    pbx.start(two)
    return one


def play_far_end(pbx: Pbx, chan: Channel, ep: Endpoint) -> None:
    """Schedule what the SIP peer does with the INVITE."""
    world, sched = pbx.world, pbx.world.sched
    b = ep.behaviour

    def release(_c: Channel) -> None:
        ep.active = max(0, ep.active - 1)

    pbx.on_channel_gone(chan, release)
    far_end = pbx.far_ends.get(ep.name)
    if far_end is not None and b.mode == "answer":  # another simulated PBX answers it (sim/trunk_link.py)
        far_end(chan)
        return
    if b.mode in ("busy", "dnd", "congestion"):
        cause, sip = REFUSAL[b.mode]
        sched.call_later(b.ring_after, lambda: world.hangup(chan, cause, request="hard", tech_cause=sip))
        return
    if b.mode == "unreachable":
        cause, sip = REFUSAL["unreachable"]
        sched.call_later(b.timer_b, lambda: world.hangup(chan, cause, request="hard", tech_cause=sip))
        return
    sched.call_later(b.ring_after, lambda: world.ringing(chan))
    if b.mode == "answer":
        sched.call_later(max(b.ring_after, b.answer_after), lambda: _far_answer(pbx, chan, b.hangup_after))


def _far_answer(pbx: Pbx, chan: Channel, hangup_after: float | None) -> None:
    if chan.hungup:
        return
    pbx.world.answer(chan)
    if hangup_after is not None:
        pbx.world.sched.call_later(hangup_after, lambda: pbx.world.hangup(chan, 16, request="hard"))


def dial_string(target: str) -> str:
    return parse_target(target)[1]


Done = Callable[[str, Channel | None], None]


class DialAttempt:
    """app_dial: ring every target, first answer wins, the rest are cancelled; ``done(status, leg)``."""

    __slots__ = ("answered", "caller", "done", "finished", "legs", "pbx", "status", "timer")

    def __init__(self, pbx: Pbx, caller: Channel | None, done: Done) -> None:
        self.pbx = pbx
        self.caller = caller
        self.done = done
        self.legs: list[Channel] = []
        self.answered: Channel | None = None
        self.timer: Timer | None = None
        self.finished = False
        self.status = "CHANUNAVAIL"

    def _both(self, leg: Channel) -> list[tuple[str, str]]:
        head = self.caller.snapshot() if self.caller is not None else []
        return head + leg.snapshot("Dest")

    def add(self, leg: Channel, dialstring: str) -> None:
        leg.waiter = self
        self.legs.append(leg)
        self.pbx.world.emit("DialBegin", CALL, [*self._both(leg), ("DialString", dialstring)])
        if self.caller is not None and leg.tech == "PJSIP":
            self.pbx.world.set_connected(self.caller, leg.cid_num, leg.cid_name)

    def arm_timeout(self, seconds: float, on_timeout: Callable[[], None] | None = None) -> None:
        if seconds > 0:
            self.timer = self.pbx.world.sched.call_later(seconds, on_timeout or self.timeout)

    def on_ringing(self, leg: Channel) -> None:
        if self.finished:
            return
        world = self.pbx.world
        world.emit("DialState", CALL, [*self._both(leg), ("DialStatus", "RINGING")])
        caller = self.caller
        if caller is not None and caller.partner is not None and not caller.is_local_one:
            # Ringing travels back through a Local pair: the ;1 half (and whoever dialed it) hears it.
            world.ringing(caller.partner)

    def on_answer(self, leg: Channel) -> None:
        if self.finished:
            return
        self.finished = True
        self.answered = leg
        if self.timer is not None:
            self.timer.cancel()
        world = self.pbx.world
        for other in self.legs:
            if other is not leg and not other.hungup:
                other.waiter = None
                world.emit("DialEnd", CALL, [*self._both(other), ("DialStatus", "CANCEL")])
                world.hangup(other, 26)
        leg.waiter = None
        if self.caller is not None:
            world.set_var(self.caller, "DIALSTATUS", "ANSWER")
        world.emit("DialEnd", CALL, [*self._both(leg), ("DialStatus", "ANSWER")])
        self.status = "ANSWER"
        self.done("ANSWER", leg)

    def on_hangup(self, leg: Channel) -> None:
        """A leg went away before answering: its cause decides the status once every leg has failed."""
        if leg is self.caller:
            self.cancel(16)
            return
        if self.finished:
            return
        cause = self._cause_of(leg)
        status = dial_status_for_cause(cause)
        if self.caller is not None and cause:
            # The caller inherits the failed leg's cause: a later Hangup() uses it (trace 13: 17).
            self.caller.vars["HANGUPCAUSE"] = str(cause)
        self.status = status
        world = self.pbx.world
        world.emit("DialEnd", CALL, [*self._both(leg), ("DialStatus", status)])
        if all(other.hungup or other is leg for other in self.legs):
            self._finish(status)

    @staticmethod
    def _cause_of(leg: Channel) -> int:
        return int(leg.vars.get("HANGUPCAUSE", "0") or 0)

    def timeout(self) -> None:
        """Nobody answered in time: NOANSWER, the ringing legs are hung up (cause 0, as in trace 15)."""
        if self.finished:
            return
        world = self.pbx.world
        self.finished = True
        for leg in self.legs:
            if not leg.hungup:
                leg.waiter = None
                world.emit("DialEnd", CALL, [*self._both(leg), ("DialStatus", "NOANSWER")])
                world.hangup(leg, 0)
        self._finish("NOANSWER", already=True)

    def cancel(self, cause: int = 16) -> None:
        """The caller went away: every leg still ringing is cancelled."""
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        for leg in self.legs:
            if not leg.hungup:
                leg.waiter = None
                self.pbx.world.emit("DialEnd", CALL, [*self._both(leg), ("DialStatus", "CANCEL")])
                self.pbx.world.hangup(leg, cause)

    def _finish(self, status: str, already: bool = False) -> None:
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        if self.caller is not None:
            self.pbx.world.set_var(self.caller, "DIALSTATUS", status)
        self.status = status
        self.done(status, None)

    def detach(self, chan: Channel) -> None:
        if chan is self.caller:
            self.cancel(16)

    @property
    def is_up(self) -> bool:
        return self.answered is not None and self.answered.state == UP
