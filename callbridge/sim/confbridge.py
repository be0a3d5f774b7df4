"""app_confbridge: rooms on a ``base``/``softmix`` bridge with the hidden ``CBAnn/<room>`` announcer.

Trace 07: the announcer takes a Local-style channel number, is counted in BridgeNumChannels, emits
no BridgeEnter or channel events, is listed by a ``/regex/`` Hangup but not by CoreShowChannels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callbridge.sim.bridges import Bridge
from callbridge.sim.channels import Channel
from callbridge.sim.dialplan import split_args
from callbridge.sim.outcomes import BLOCK, Outcome

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

CALL = "call,all"


@dataclass(slots=True)
class Room:
    name: str
    bridge: Bridge
    announcer: str
    users: list[Channel] = field(default_factory=list)
    muted: set[str] = field(default_factory=set)
    joined: dict[str, float] = field(default_factory=dict)
    locked: bool = False


class Conferences:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.rooms: dict[str, Room] = {}

    def hidden_channels(self) -> list[str]:
        return [n for room in self.rooms.values() for n in (room.announcer + ";2", room.announcer + ";1")]

    def _head(self, room: Room) -> list[tuple[str, str]]:
        b = room.bridge.headers()
        return [("Conference", room.name), *b]

    def _flags(self, room: Room, chan: Channel) -> list[tuple[str, str]]:
        return [("Admin", "No"), ("Muted", "Yes" if chan.name in room.muted else "No")]

    def app_confbridge(self, chan: Channel, data: str) -> Outcome:
        args = split_args(data)
        name = args[0].strip()
        world = self.pbx.world
        room = self.rooms.get(name)
        if room is None:
            bridge = world.create_bridge("base", "softmix", conference=name)
            bridge.announcer = True
            announcer = f"CBAnn/{name}-{world.naming.next_suffix('Local')}"
            room = Room(name, bridge, announcer)
            self.rooms[name] = room
            world.emit("ConfbridgeStart", CALL, self._head(room))
        world.answer(chan)
        room.users.append(chan)
        room.joined[chan.name] = world.sched.now
        gen = chan.run_gen

        def after(c: Channel) -> None:
            self.pbx.resume(c, gen)

        # The member is counted before ConfbridgeJoin is emitted (BridgeNumChannels includes it).
        room.bridge.members.append(chan)
        world.emit("ConfbridgeJoin", CALL, [*self._head(room), *chan.snapshot(), *self._flags(room, chan)])
        room.bridge.members.remove(chan)
        world.enter(room.bridge, chan, after)
        self._peers(room)
        chan.waiter = _Member(self, room)
        return BLOCK

    def _peers(self, room: Room) -> None:
        for user in room.users:
            others = [room.announcer + ";2", *(u.name for u in room.users if u is not user)]
            self.pbx.world.set_var(user, "BRIDGEPEER", ",".join(others))

    def leave(self, room: Room, chan: Channel, *, hungup: bool) -> None:
        if chan not in room.users:
            return
        world = self.pbx.world
        world.emit("ConfbridgeLeave", CALL, [*self._head(room), *chan.snapshot(), ("Admin", "No")])
        room.users.remove(chan)
        room.muted.discard(chan.name)
        world.set_var(chan, "BRIDGEPEER", "")
        if not hungup:
            after = room.bridge.after.get(chan.name)
            world.leave(chan, dissolve=False)
            self._peers(room)
            if after is not None:
                after(chan)
        else:
            self._peers(room)
            # The hung-up user's BridgeLeave comes first; the room ends after it (trace 07).
            world.sched.soon(lambda: self.finish_leave(room))
            return
        if not room.users:
            self._end(room)

    def _end(self, room: Room) -> None:
        world = self.pbx.world
        self.rooms.pop(room.name, None)
        room.bridge.announcer = False
        world.emit("ConfbridgeEnd", CALL, self._head(room))
        world.destroy_bridge(room.bridge)

    def finish_leave(self, room: Room) -> None:
        if not room.users and room.name in self.rooms:
            self._end(room)

    def kick(self, name: str, channel: str) -> bool:
        room = self.rooms.get(name)
        if room is None:
            return False
        targets = [u for u in room.users if channel in (u.name, "all")]
        for user in targets:
            self.leave(room, user, hungup=False)
        return bool(targets)

    def mute(self, name: str, channel: str, on: bool) -> bool:
        room = self.rooms.get(name)
        if room is None:
            return False
        for user in room.users:
            if channel in (user.name, "all"):
                if on:
                    room.muted.add(user.name)
                else:
                    room.muted.discard(user.name)
                event = "ConfbridgeMute" if on else "ConfbridgeUnmute"
                self.pbx.world.emit(event, CALL, [*self._head(room), *user.snapshot(), ("Admin", "No")])
                return True
        return False

    def list_rooms(self) -> list[list[tuple[str, str]]]:
        return [[("Conference", r.name), ("Parties", str(len(r.users))), ("Marked", "0"),
                 ("Locked", "Yes" if r.locked else "No"), ("Muted", "No")] for r in self.rooms.values()]

    def list_users(self, name: str) -> list[list[tuple[str, str]]] | None:
        room = self.rooms.get(name)
        if room is None:
            return None
        now = self.pbx.world.sched.now
        return [[("Conference", room.name), ("Admin", "No"), ("MarkedUser", "No"), ("WaitMarked", "No"),
                 ("EndMarked", "No"), ("EndMarkedAny", "No"), ("Waiting", "No"),
                 ("Muted", "Yes" if u.name in room.muted else "No"), ("Talking", "No"),
                 ("AnsweredTime", str(int(now - room.joined.get(u.name, now)))), *u.snapshot()]
                for u in room.users]


class _Member:
    __slots__ = ("confs", "room")

    def __init__(self, confs: Conferences, room: Room) -> None:
        self.confs, self.room = confs, room

    def on_hangup(self, chan: Channel) -> None:
        # Called before the Hangup event: ConfbridgeLeave precedes BridgeLeave as in trace 07.
        self.confs.leave(self.room, chan, hungup=True)

    def detach(self, chan: Channel) -> None:
        self.confs.leave(self.room, chan, hungup=True)
