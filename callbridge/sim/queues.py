"""app_queue: callers ordered by QUEUE_PRIO, members with penalties and pause, ring strategies.

Event shapes and the subtle rules follow traces 09, 19 and 21: Queue events carry ``Priority:`` = the
*dialplan* priority (it is in the channel snapshot); QUEUE_PRIO is visible only in QueueEntry; no
event tells an earlier caller its position dropped; a withdraw is acted on by the queue loop about a
second later; a caller's own hang-up while waiting gives Hangup cause 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callbridge.sim.channels import Channel
from callbridge.sim.clock import Timer
from callbridge.sim.dial import DialAttempt, LegError, make_leg
from callbridge.sim.dialplan import split_args
from callbridge.sim.outcomes import BLOCK, Outcome
from callbridge.sim.predial import callee_predial

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

AGENT = "agent,all"
CALL = "call,all"
STRATEGIES = ("ringall", "linear", "rrmemory", "leastrecent")
POLL = 1.0  # app_queue's wait loop period: how late a withdraw request is acted upon


@dataclass(slots=True, eq=False)
class Member:
    interface: str
    name: str
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    login: int = field(default_factory=lambda: int(time.time()))
    busy: bool = False  # being rung or talking for this queue
    in_call: bool = False  # connected to a queue caller (InCall)
    status: int = 1  # device state: 1 not in use, 2 in use, 6 ringing

    def headers(self, queue: str, status: int | None = None) -> list[tuple[str, str]]:
        status = self.status if status is None else status
        return [
            ("Queue", queue), ("MemberName", self.name), ("Interface", self.interface),
            ("StateInterface", self.interface), ("Membership", "dynamic"), ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)), ("LastCall", str(self.last_call)), ("LastPause", "0"),
            ("LoginTime", str(self.login)), ("InCall", "1" if self.in_call else "0"), ("Status", str(status)),
            ("Paused", "1" if self.paused else "0"), ("PausedReason", self.reason), ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]


@dataclass(slots=True, eq=False)  # identity: list.index/remove must not compare field by field
class Entry:
    chan: Channel
    prio: int
    joined: float
    original_position: int
    gen: int
    withdraw: str | None = None
    attempt: DialAttempt | None = None
    ringing: Member | None = None
    timer: Timer | None = None
    deadline: Timer | None = None
    linpos: int = 0  # linear strategy: where this caller's next attempt starts
    rung: list[Member] = field(default_factory=list)  # members rung by the current attempt
    predial: tuple[str, str, int] | None = None  # the b() handler run on each member's channel


@dataclass(slots=True)
class Queue:
    name: str
    strategy: str = "ringall"
    timeout: float = 15.0
    retry: float = 2.0
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    rr_next: int = 0

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def insert(self, entry: Entry) -> int:
        """Higher priority first, FIFO within a priority (app_queue's insert_entry); returns the position.

        Scans from the tail: with equal priorities a join is O(1) even with thousands waiting.
        """
        i = len(self.entries)
        while i > 0 and self.entries[i - 1].prio < entry.prio:
            i -= 1
        self.entries.insert(i, entry)
        return i + 1

    def member(self, interface: str) -> Member | None:
        return next((m for m in self.members if m.interface == interface), None)


class Queues:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.queues: dict[str, Queue] = {}
        pbx.world.device_listeners.append(self.device_changed)

    def device_changed(self, interface: str, status: int) -> None:
        """A member's device changed state: QueueMemberStatus in every queue it belongs to (trace 09)."""
        for queue in self.queues.values():
            member = queue.member(interface)
            if member is not None and member.status != status:
                member.status = status
                self.pbx.world.emit("QueueMemberStatus", AGENT, member.headers(queue.name))

    def define(self, name: str, strategy: str = "ringall", timeout: float = 15.0, retry: float = 2.0) -> Queue:
        if strategy not in STRATEGIES:
            raise ValueError(f"queue {name}: strategy {strategy!r} not simulated; use one of {STRATEGIES}")
        queue = self.queues.get(name) or Queue(name)
        queue.strategy, queue.timeout, queue.retry = strategy, timeout, retry
        self.queues[name] = queue
        return queue

    # --- the Queue() application ----------------------------------------------------------------
    def app_queue(self, chan: Channel, data: str) -> Outcome:
        args = split_args(data)
        queue = self.queues.get(args[0].strip())
        world = self.pbx.world
        if queue is None:
            world.set_var(chan, "QUEUESTATUS", "UNKNOWN")
            return None
        prio_text = chan.vars.get("QUEUE_PRIO", "0") or "0"
        entry = Entry(chan, int(prio_text) if prio_text.lstrip("-").isdigit() else 0, world.sched.now, 0,
                      chan.run_gen, predial=callee_predial(args[1]) if len(args) > 1 else None)
        entry.original_position = queue.insert(entry)
        world.chan_event("QueueCallerJoin", chan, [("Queue", queue.name), ("Position", str(entry.original_position)),
                                                   ("Count", str(len(queue.entries)))], AGENT)
        world.chan_event("MusicOnHoldStart", chan, [("Class", "default")])
        chan.waiter = _CallerWatch(self, queue, entry)
        timeout = args[4].strip() if len(args) > 4 else ""
        if timeout.isdigit() and int(timeout) > 0:
            entry.deadline = world.sched.call_later(float(timeout), lambda: self._leave_timeout(queue, entry))
        world.sched.soon(lambda: self.distribute(queue))
        return BLOCK

    def _leave(self, queue: Queue, entry: Entry, *, abandon: bool) -> None:
        world = self.pbx.world
        position = queue.position(entry)
        if abandon:
            queue.abandoned += 1
            hold = int(world.sched.now - entry.joined)
            world.chan_event("QueueCallerAbandon", entry.chan, [
                ("Queue", queue.name), ("Position", str(position)),
                ("OriginalPosition", str(entry.original_position)), ("HoldTime", str(hold))], AGENT)
        queue.entries.remove(entry)
        for t in (entry.timer, entry.deadline):
            if t is not None:
                t.cancel()
        if entry.withdraw is not None:
            world.set_var(entry.chan, "QUEUE_WITHDRAW_INFO", entry.withdraw)
        world.chan_event("MusicOnHoldStop", entry.chan)
        world.chan_event("QueueCallerLeave", entry.chan, [("Queue", queue.name), ("Position", str(position)),
                                                          ("Count", str(len(queue.entries)))], AGENT)

    def _leave_timeout(self, queue: Queue, entry: Entry) -> None:
        if entry not in queue.entries:
            return
        self._stop_ringing(entry)
        self._leave(queue, entry, abandon=False)
        self.pbx.world.set_var(entry.chan, "QUEUESTATUS", "TIMEOUT")
        self.pbx.resume(entry.chan, entry.gen)

    def caller_gone(self, queue: Queue, entry: Entry) -> None:
        if entry in queue.entries:
            self._stop_ringing(entry)
            self._leave(queue, entry, abandon=True)
            self.distribute(queue)

    def withdraw(self, queue: Queue, entry: Entry, info: str) -> None:
        entry.withdraw = info

        def act() -> None:
            if entry not in queue.entries or entry.chan.hungup:
                return
            self._stop_ringing(entry)
            self._leave(queue, entry, abandon=True)
            self.pbx.world.set_var(entry.chan, "QUEUESTATUS", "WITHDRAW")
            self.pbx.resume(entry.chan, entry.gen)

        self.pbx.world.sched.call_later(POLL, act)

    # --- ringing members ------------------------------------------------------------------------
    def _free_members(self, queue: Queue, entry: Entry | None = None) -> list[Member]:
        free = [m for m in queue.members if not m.paused and not m.busy]
        if not free:
            return []
        best = min(m.penalty for m in free)
        free = [m for m in free if m.penalty == best]
        if queue.strategy == "leastrecent":
            free.sort(key=lambda m: m.last_call)
        elif queue.strategy in ("rrmemory", "linear"):
            start = queue.rr_next if queue.strategy == "rrmemory" else (entry.linpos if entry else 0)
            start %= len(queue.members)
            order = queue.members[start:] + queue.members[:start]
            free = [m for m in order if m in free]
        return free

    def distribute(self, queue: Queue) -> None:
        """Offer waiting callers, highest priority first, to free members (autofill)."""
        if not self._free_members(queue):
            return
        for entry in list(queue.entries):
            if entry.attempt is not None or entry.timer is not None:
                continue
            free = self._free_members(queue, entry)
            if not free:
                return
            targets = free if queue.strategy == "ringall" else free[:1]
            self._ring(queue, entry, targets)

    def _ring(self, queue: Queue, entry: Entry, members: list[Member]) -> None:
        world = self.pbx.world
        caller = entry.chan
        rung: dict[str, Member] = {}

        entry.rung = []

        def done(status: str, leg: Channel | None) -> None:
            entry.attempt = None
            entry.rung = []
            for m in rung.values():
                m.busy = False
            if leg is None:
                self._retry(queue, entry)
                return
            member = rung[leg.name]
            self._connect(queue, entry, member, leg)

        attempt = DialAttempt(self.pbx, caller, done)
        entry.attempt = attempt
        for member in members:
            try:
                leg = make_leg(self.pbx, member.interface, caller=caller, predial=entry.predial)
            except LegError:
                continue
            member.busy = True
            rung[leg.name] = member
            entry.rung.append(member)
            world.emit("AgentCalled", AGENT, [*caller.snapshot(), *leg.snapshot("Dest"), ("Queue", queue.name),
                                              ("Interface", member.interface), ("MemberName", member.name)])
            attempt.add(leg, member.interface)
        if not attempt.legs:
            entry.attempt = None
            self._retry(queue, entry)
            return
        caller.waiter = _CallerWatch(self, queue, entry)

        def no_answer() -> None:
            for leg in attempt.legs:
                if not leg.hungup:
                    m = rung[leg.name]
                    ring_ms = str(int(queue.timeout * 1000))
                    if m in queue.members:  # the next attempt starts after the member that did not answer
                        entry.linpos = queue.members.index(m) + 1
                        queue.rr_next = entry.linpos
                    world.emit("AgentRingNoAnswer", AGENT, [
                        *caller.snapshot(), *leg.snapshot("Dest"), ("Queue", queue.name),
                        ("Interface", m.interface), ("MemberName", m.name), ("RingTime", ring_ms)])
            attempt.finished = False
            attempt.timeout()

        attempt.arm_timeout(queue.timeout, no_answer)

    def _retry(self, queue: Queue, entry: Entry) -> None:
        if entry not in queue.entries:
            return

        def again() -> None:
            entry.timer = None
            self.distribute(queue)

        entry.timer = self.pbx.world.sched.call_later(queue.retry, again)

    def _queue_of(self, entry: Entry) -> Queue | None:
        return next((q for q in self.queues.values() if entry in q.entries), None)

    def _stop_ringing(self, entry: Entry) -> None:
        if entry.attempt is not None:
            attempt, entry.attempt = entry.attempt, None
            attempt.done = lambda _s, _l: None
            attempt.cancel(16)
            # The members whose phones were ringing are free again (the replaced callback used to do this;
            # without it a member rung for a caller who hung up stayed busy for ever).
            for member in entry.rung:
                if not member.in_call:
                    member.busy = False
            entry.rung = []
            queue = self._queue_of(entry)
            if queue is not None:
                self.pbx.world.sched.soon(lambda: self.distribute(queue))

    def _connect(self, queue: Queue, entry: Entry, member: Member, leg: Channel) -> None:
        world = self.pbx.world
        caller = entry.chan
        hold = int(world.sched.now - entry.joined)
        self._leave(queue, entry, abandon=False)
        world.emit("AgentConnect", AGENT, [*caller.snapshot(), *leg.snapshot("Dest"), ("Queue", queue.name),
                                           ("Interface", member.interface), ("MemberName", member.name),
                                           ("HoldTime", str(hold)), ("RingTime", "0")])
        # As in Asterisk: the bridge set-up answers a caller that is not up yet (features.c pre_bridge_setup,
        # ast_raw_answer), and a Local ;2 answering brings its ;1 half up (core_local) — so an originated
        # Local/…@cb-to-<hotline> leg waiting in a local queue connects when the member answers.
        world.answer(caller)
        member.busy = True
        member.in_call = True
        queue.completed += 1
        queue.rr_next = queue.members.index(member) + 1 if member in queue.members else 0
        talk_start = world.sched.now

        def complete(reason: str) -> None:
            member.busy = member.in_call = False
            member.calls_taken += 1
            member.last_call = int(time.time())
            world.emit("AgentComplete", AGENT, [
                *caller.snapshot(), *leg.snapshot("Dest"), ("Queue", queue.name), ("Interface", member.interface),
                ("MemberName", member.name), ("HoldTime", str(hold)),
                ("TalkTime", str(int(world.sched.now - talk_start))), ("Reason", reason)])
            world.sched.soon(lambda: self.distribute(queue))

        def agent_after(c: Channel) -> None:
            world.hangup(c, 16)

        def caller_after(c: Channel) -> None:
            complete("agent")
            self.pbx.resume(c, entry.gen)

        bridge = world.bridge_two(leg, caller, agent_after, caller_after)
        caller.waiter = _Talking(lambda: complete("caller"), bridge)


class _CallerWatch:
    """The caller's waiter while queued: its hang-up is an abandon."""

    __slots__ = ("entry", "queue", "queues")

    def __init__(self, queues: Queues, queue: Queue, entry: Entry) -> None:
        self.queues, self.queue, self.entry = queues, queue, entry

    def on_hangup(self, _chan: Channel) -> None:
        self.queues.caller_gone(self.queue, self.entry)

    def detach(self, _chan: Channel) -> None:
        self.queues.caller_gone(self.queue, self.entry)


class _Talking:
    __slots__ = ("bridge", "on_end")

    def __init__(self, on_end: object, bridge: object) -> None:
        self.on_end = on_end
        self.bridge = bridge

    def on_hangup(self, _chan: Channel) -> None:
        if callable(self.on_end):
            self.on_end()

    def detach(self, chan: Channel) -> None:
        self.on_hangup(chan)
