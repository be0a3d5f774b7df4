"""Attended transfer (AMI Atxfer / CancelAtxfer) as bridge_basic's feature does it (traces 06, 17).

The transferer's phone "dials" the feature code (DTMFEnd ``*2`` then the target digits), the
transferee hears music, a ``Local/<exten>@<context>`` consult leg is bridged with the transferer.
Hanging the transferer up completes the transfer (``AttendedTransfer`` with DestType Bridge and the
Local ``;1`` as TransferTargetChannel); CancelAtxfer (``*1``) returns the transferer to the original
bridge, which keeps its BridgeUniqueid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callbridge.sim.bridges import Bridge
from callbridge.sim.channels import Channel

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

CALL = "call,all"


class Consultation:
    __slots__ = ("active", "consult", "one", "orig", "pbx", "transferee", "transferer")

    def __init__(self, pbx: Pbx, transferer: Channel, transferee: Channel, orig: Bridge, consult: Bridge,
                 one: Channel) -> None:
        self.pbx, self.transferer, self.transferee = pbx, transferer, transferee
        self.orig, self.consult, self.one = orig, consult, one
        self.active = True

    def on_hangup(self, chan: Channel) -> None:
        """The transferer hung up: complete the transfer."""
        if not self.active or self.one.hungup:
            return
        self.active = False
        world = self.pbx.world
        world.leave_bridge(self.consult, chan, kick_peers=False)
        # The consult bridge is merged into the original one (trace 06: BridgeMerge, then the move).
        world.emit("BridgeMerge", CALL, [*_bridge(self.orig, "ToBridge"), *_bridge(self.consult, "FromBridge")])
        world.leave_bridge(self.consult, self.one, kick_peers=False)
        world.enter(self.orig, self.one, lambda c: world.hangup(c, 16))
        if not self.transferee.hungup:
            world.chan_event("MusicOnHoldStop", self.transferee)
            world.set_connected(self.one, self.transferee.cid_num, self.transferee.cid_name)
            world.set_connected(self.transferee, self.one.cid_num, self.one.cid_name)
        world.emit("AttendedTransfer", CALL, [
            ("Result", "Success"), *chan.snapshot("OrigTransferer"), *_bridge(self.orig, "OrigBridge"),
            *chan.snapshot("SecondTransferer"), *_bridge(self.consult, "SecondBridge"),
            *self.transferee.snapshot("Transferee"), *self.one.snapshot("TransferTarget"),
            ("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", self.orig.uniqueid)])
        world.destroy_bridge(self.consult)

    def back_to_original(self, *, cancelled: bool) -> None:
        if not self.active:
            return
        self.active = False
        world = self.pbx.world
        chan = self.transferer
        chan.waiter = None
        if cancelled:
            world.hangup(self.one, 16)
        if chan.hungup:
            return
        world.leave_bridge(self.consult, chan, kick_peers=False)
        if self.consult.uniqueid in world.bridges and not self.consult.members:
            world.destroy_bridge(self.consult)
        after = self.orig.after.get(self.transferee.name)
        world.enter(self.orig, chan, after or (lambda c: world.hangup(c, 16)))
        if not self.transferee.hungup:
            world.chan_event("MusicOnHoldStop", self.transferee)
        world.chan_event("Unhold", chan)
        if not self.transferee.hungup:
            world.set_connected(chan, self.transferee.cid_num, self.transferee.cid_name)


class _ConsultLeg:
    """bridge_basic dials the consult Local channel itself: DialState/DialEnd carry only Dest* fields."""

    __slots__ = ("pbx", "transferer")

    def __init__(self, pbx: Pbx, transferer: Channel) -> None:
        self.pbx, self.transferer = pbx, transferer

    def on_ringing(self, leg: Channel) -> None:
        self.pbx.world.emit("DialState", CALL, [*leg.snapshot("Dest"), ("DialStatus", "RINGING")])

    def on_answer(self, leg: Channel) -> None:
        leg.waiter = None
        world = self.pbx.world
        world.emit("DialEnd", CALL, [*leg.snapshot("Dest"), ("DialStatus", "ANSWER")])
        if not self.transferer.hungup:
            world.set_connected(self.transferer, leg.cid_num, leg.cid_name)


def _bridge(bridge: Bridge, prefix: str) -> list[tuple[str, str]]:
    return [(prefix + k[len("Bridge"):] if k.startswith("Bridge") else prefix + k, v) for k, v in bridge.headers()]


def _dtmf(pbx: Pbx, chan: Channel, digits: str) -> None:
    for digit in digits:
        pbx.world.chan_event("DTMFEnd", chan, [("Digit", digit), ("DurationMs", "0"), ("Direction", "Received")],
                             "dtmf,all")


#: features.conf transferdigittimeout (as rendered): how long Asterisk waits for the target's digits.
TRANSFER_DIGIT_TIMEOUT = 3.0
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def atxfer(pbx: Pbx, chan: Channel, context: str, exten: str) -> str:
    """Start an attended transfer of ``chan``'s bridge peer to exten@context; "" or an error message.

    Asterisk's Atxfer "dials" the feature code and then ``Exten`` as DTMF into the transferer's channel;
    characters that are no DTMF digit (``s``) dial nothing, so the feature collects no target, waits
    ``transferdigittimeout`` ("Dialed no digits"), and gives up: the transferer stays with the caller
    (Hold … Unhold), no consult leg, the AMI reply was a success all the same."""
    world = pbx.world
    orig = chan.bridge
    if not isinstance(orig, Bridge) or orig.conference:
        return "Atxfer failed: channel is not in a two-party bridge"
    peers = orig.peers_of(chan)
    if len(peers) != 1:
        return "Atxfer failed: channel is not in a two-party bridge"
    if not exten or not pbx.dialplan.find(context, exten):
        return "Extension does not exist"
    transferee = peers[0]
    if not exten or any(c not in _DTMF_DIGITS for c in exten):
        world.sched.soon(lambda: _no_target(pbx, chan, transferee, orig))
        return ""

    def begin() -> None:
        if chan.hungup or chan.bridge is not orig:
            return
        _dtmf(pbx, chan, "*2")
        world.chan_event("Hold", chan)
        world.chan_event("MusicOnHoldStart", transferee, [("Class", "default")])
        _dtmf(pbx, chan, exten)
        one, two = world.new_local_pair(exten, context, linkedid=chan.linkedid)
        # Asterisk's dial_transfer (bridge_basic.c) inherits the transferer's _/__ variables to the new
        # Local ;1, and chan_local copies them on to ;2, where the target context runs.
        world.inherit_vars(chan, one)
        world.inherit_vars(chan, two)
        consult = world.create_bridge()
        world.set_callerid(two, chan.cid_num, chan.cid_name)
        world.emit("LocalBridge", CALL, one.snapshot("LocalOne") + two.snapshot("LocalTwo") + [
            ("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")])
        world.set_connected(one, chan.cid_num, chan.cid_name)
        world.enter(consult, one, lambda c: world.hangup(c, 16))
        one.waiter = _ConsultLeg(pbx, chan)
        world.leave_bridge(orig, chan, kick_peers=False)
        world.enter(consult, chan, lambda c: None)
        record = Consultation(pbx, chan, transferee, orig, consult, one)
        chan.waiter = record
        pbx.consultations[chan.name] = record
        pbx.on_channel_gone(one, lambda _c: record.back_to_original(cancelled=False))
        pbx.start(two)

    world.sched.soon(begin)
    return ""


def _no_target(pbx: Pbx, chan: Channel, transferee: Channel, orig: Bridge) -> None:
    """The attended-transfer feature started and collected no digits (see :func:`atxfer`)."""
    world = pbx.world
    if chan.hungup or chan.bridge is not orig:
        return
    _dtmf(pbx, chan, "*2")
    world.chan_event("Hold", chan)
    world.chan_event("MusicOnHoldStart", transferee, [("Class", "default")])

    def give_up() -> None:
        if not transferee.hungup:
            world.chan_event("MusicOnHoldStop", transferee)
        if not chan.hungup:
            world.chan_event("Unhold", chan)

    world.sched.call_later(TRANSFER_DIGIT_TIMEOUT, give_up)


def cancel_atxfer(pbx: Pbx, chan: Channel) -> str:
    record = pbx.consultations.pop(chan.name, None)
    if record is None or not record.active:
        return "No attended transfer in progress"

    def cancel() -> None:
        _dtmf(pbx, chan, "*1")
        record.back_to_original(cancelled=True)

    pbx.world.sched.soon(cancel)
    return ""
