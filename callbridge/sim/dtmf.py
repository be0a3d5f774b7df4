"""DTMF from a phone and its relay across the bridge (trace 18).

A digit received on a bridged channel is passed to the peer (``Direction: Sent``) and, through a Local
pair, appears as received on the other half. Digits that may start a feature code (``*``/``#`` as in
features.conf ``*2``, ``#1``, ``*0``) are held; if no feature matches they are replayed about 100 ms
later, and then show only on the Local ``;2`` half.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callbridge.sim.bridges import Bridge
from callbridge.sim.channels import Channel

if TYPE_CHECKING:
    from callbridge.sim.world import World

DTMF = "dtmf,all"
FEATURES = ("*2", "#1", "*0")  # [featuremap]; atxferabort *1 applies only during a transfer
REPLAY_DELAY = 0.1


class DtmfRelay:
    def __init__(self, world: World) -> None:
        self.world = world
        self.held: dict[str, list[str]] = {}

    def _peers(self, chan: Channel) -> list[Channel]:
        bridge = chan.bridge
        return bridge.peers_of(chan) if isinstance(bridge, Bridge) and not bridge.conference else []

    def _emit(self, chan: Channel, kind: str, digit: str, direction: str, duration: int) -> None:
        extra = [("Digit", digit)]
        if kind == "DTMFEnd":
            extra.append(("DurationMs", str(duration)))
        extra.append(("Direction", direction))
        self.world.chan_event(kind, chan, extra, DTMF)

    def _relay(self, chan: Channel, kind: str, digit: str, duration: int, *, far_only: bool = False) -> None:
        for peer in self._peers(chan):
            if not far_only or peer.partner is None:
                self._emit(peer, kind, digit, "Sent", duration)
            if peer.partner is not None and not peer.partner.hungup:
                self._emit(peer.partner, kind, digit, "Received", duration)

    def _holding(self, chan: Channel, digit: str) -> bool:
        return chan.name in self.held or any(f.startswith(digit) for f in FEATURES)

    def begin(self, chan: Channel, digit: str) -> None:
        self._emit(chan, "DTMFBegin", digit, "Received", 0)
        if not self._holding(chan, digit):
            self._relay(chan, "DTMFBegin", digit, 0)

    def end(self, chan: Channel, digit: str, duration: int, *, had_begin: bool = True) -> None:
        self._emit(chan, "DTMFEnd", digit, "Received", duration)
        held = self.held.get(chan.name)
        if held is not None:
            held.append(digit)
            seq = "".join(held)
            if seq in FEATURES:
                del self.held[chan.name]  # a feature code: consumed by the bridge, never relayed
            elif not any(f.startswith(seq) for f in FEATURES):
                del self.held[chan.name]
                self.world.sched.call_later(REPLAY_DELAY, lambda: self._replay(chan, seq, duration))
            return
        if any(f.startswith(digit) for f in FEATURES):
            self.held[chan.name] = [digit]
            return
        if not had_begin:
            self._relay(chan, "DTMFBegin", digit, 0)
        self._relay(chan, "DTMFEnd", digit, duration)

    def _replay(self, chan: Channel, seq: str, duration: int) -> None:
        if chan.hungup:
            return
        for digit in seq:
            self._relay(chan, "DTMFBegin", digit, 0, far_only=True)
            self._relay(chan, "DTMFEnd", digit, duration, far_only=True)
