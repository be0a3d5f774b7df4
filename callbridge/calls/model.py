"""The tracker's model: channels, calls, bridges, queues, conferences — and the call state machine as data.

The objects are mutable because only the tracker's handlers change them (held in
:class:`~callbridge.calls.state.TrackerState`); :class:`~callbridge.calls.tracker.CallTracker` hands them
out through read-only mappings, and consumers must treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callbridge.fastinit import quick_constructor


class CallState(StrEnum):
    OFFERED = "offered"  # known to the PBX, in the dialplan (IVR, routing)
    QUEUED = "queued"  # waiting in a queue
    RINGING = "ringing"  # some party is being rung
    ANSWERED = "answered"  # talking to at least one party
    HELD = "held"  # a party put the call on hold
    TRANSFERRING = "transferring"  # a blind transfer handed the caller to the dialplan
    CONFERENCE = "conference"  # the caller is in a ConfBridge room
    ENDED = "ended"


S = CallState
#: Transitions the tracker expects. Anything else is logged as unexpected but still applied: the PBX is
#: the source of truth, and a missed event must not freeze a call in a stale state.
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.OFFERED: frozenset({S.QUEUED, S.RINGING, S.ANSWERED, S.CONFERENCE, S.TRANSFERRING, S.ENDED}),
    S.QUEUED: frozenset({S.RINGING, S.ANSWERED, S.OFFERED, S.CONFERENCE, S.ENDED}),
    S.RINGING: frozenset({S.ANSWERED, S.QUEUED, S.OFFERED, S.RINGING, S.CONFERENCE, S.TRANSFERRING, S.ENDED}),
    S.ANSWERED: frozenset({S.HELD, S.TRANSFERRING, S.CONFERENCE, S.RINGING, S.QUEUED, S.OFFERED, S.ENDED}),
    S.HELD: frozenset({S.ANSWERED, S.TRANSFERRING, S.RINGING, S.CONFERENCE, S.ENDED}),
    S.TRANSFERRING: frozenset({S.RINGING, S.ANSWERED, S.QUEUED, S.OFFERED, S.CONFERENCE, S.ENDED}),
    S.CONFERENCE: frozenset({S.ANSWERED, S.OFFERED, S.TRANSFERRING, S.ENDED}),
    S.ENDED: frozenset(),
}


def is_expected(old: CallState, new: CallState) -> bool:
    return new in TRANSITIONS[old]


class States:
    """:class:`CallState`'s members as plain class attributes, for the tracker's per-event code: reading a
    member through its enum class (``CallState.RINGING``) goes through ``EnumType.__getattr__``'s Python-level
    hook, ~125 ns a read here, against ~25 ns for an ordinary class attribute."""

    OFFERED = CallState.OFFERED
    QUEUED = CallState.QUEUED
    RINGING = CallState.RINGING
    ANSWERED = CallState.ANSWERED
    HELD = CallState.HELD
    TRANSFERRING = CallState.TRANSFERRING
    CONFERENCE = CallState.CONFERENCE
    ENDED = CallState.ENDED


#: The shared empty set every channel's ``dialing`` / ``dtmf_down`` and every call's ``transfers_seen`` start
#: with: most never hold anything, and an empty ``set()`` costs 216 bytes each (three per channel were a third
#: of a channel's memory). The first element replaces it with a set of the record's own (:meth:`Channel.dial`).
NOTHING: frozenset[Any] = frozenset()


class Variables(Mapping[str, str]):
    """A channel's kept variables (CB_* / QUEUE*), immutable, in one flat tuple ``(name, value, name, value …)``.

    A channel keeps two or three at most; a dict for them was 430 bytes (its object and its key table, both
    sized for eight), this is about 110. Reads like the dict it replaces (``[name]``, ``get``, ``in``);
    :meth:`Channel.set_variable` replaces it with a copy holding the new value.
    """

    __slots__ = ("flat",)

    def __init__(self, flat: tuple[str, ...] = ()) -> None:
        self.flat = flat

    def __getitem__(self, name: str) -> str:
        flat = self.flat
        for i in range(0, len(flat), 2):
            if flat[i] == name:
                return flat[i + 1]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.flat[::2])

    def __len__(self) -> int:
        return len(self.flat) // 2

    def __hash__(self) -> int:  # immutable, so hashable: what lets the empty one be a dataclass default
        return hash(self.flat)

    def __repr__(self) -> str:
        return f"Variables({dict(self)!r})"

    def with_value(self, name: str, value: str) -> Variables:
        flat = self.flat
        for i in range(0, len(flat), 2):
            if flat[i] == name:
                return Variables((*flat[: i + 1], value, *flat[i + 2 :]))
        return Variables((*flat, name, value))


#: The variables of a channel that has none (most): shared.
NO_VARIABLES = Variables()


class _NoTransfers(list["Transfer"]):
    """The one empty, unchangeable transfer list every call starts with (most never see a transfer): reads
    as an empty list; :meth:`Call.add_transfer` gives the call a list of its own (an empty one is 56 bytes)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]  # immutable, so hashable: a dataclass default
        return 0

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("the shared empty transfer list: use Call.add_transfer")

    append = extend = insert = remove = pop = clear = __setitem__ = __delitem__ = __iadd__ = _refuse


#: The transfers of a call that has none (most): shared.
NO_TRANSFERS: list[Transfer] = _NoTransfers()


class Uids(list[str]):
    """The uniqueids of a call's or a bridge's channels: a set's ``add`` / ``discard`` on a list, in the order
    they came. Two to four channels each: an empty set alone was 216 bytes, a list of three is 88."""

    __slots__ = ()

    def add(self, uid: str) -> None:
        if uid not in self:
            self.append(uid)

    def discard(self, uid: str) -> None:
        if uid in self:
            self.remove(uid)


@dataclass(slots=True)
class Channel:
    """One live channel as the tracker needs it (slotted: no per-instance ``__dict__``)."""

    uniqueid: str
    name: str
    linkedid: str
    state_desc: str = ""
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    context: str = ""
    exten: str = ""
    # These three right after the fields touch compares: its skip, the hot case, reads two cache lines of the
    # record instead of three or four (at 100k calls each line is a miss).
    # Whether a snapshot whose applied fields equal this channel's may be skipped (TrackerState.touch): always,
    # once one was applied, but for a caller whose hotline is still unresolved (asked again on every one).
    settled: bool = field(default=False, compare=False, repr=False)
    # The call of its Linkedid, ``calls[linkedid]`` held directly: that look-up was one of the big-dict
    # look-ups of nearly every event, each a few cache misses at 100k calls. A call object is made only when
    # its Linkedid has none and dropped only with its last channel, so the two never differ (tested).
    call: Call | None = field(default=None, compare=False, repr=False, metadata={"index": True})
    role: str = "party"  # caller | agent | trunk | local
    created: float = 0.0
    first_seq: int = 0  # the tracker's event number when the channel was first seen
    answered: float | None = None
    bridge_id: str | None = None
    on_hold: bool = False
    queue: str = ""  # the queue that rang this channel (AgentCalled)
    rung: bool = False  # call.ringing emitted for this channel (duplicate guard)
    rang: bool = False  # a DialState RINGING/PROGRESS was seen for this dialled leg (it really rang)
    dialing: set[str] | frozenset[str] = NOTHING  # uniqueids it is dialling (DialBegin..DialEnd): see dial()
    dialed_by: str = ""  # uniqueid of the channel that dialled this one
    answered_dest: str = ""  # uniqueid of the leg that answered this channel's Dial
    fronts: bool = False  # a Local half whose ;2 dialled someone: a hop in front of a party, never a party
    picked_by: str = ""  # the channel that picked this ringing leg up (Pickup): who really answers
    picked_num: str = ""
    hangup_cause: int | None = None  # Q.850 cause of its HangupRequest/Hangup, when Asterisk gave one
    tech_cause: str = ""  # the SIP status of its HangupRequest/Hangup (PJSIP TechCause)
    dtmf_down: set[str] | frozenset[str] = NOTHING  # digits whose DTMFBegin was seen: see key_down()
    # CB_* / QUEUE* channel variables; the shared empty NO_VARIABLES until the first (most never get one)
    variables: Variables = NO_VARIABLES

    def dial(self, uid: str) -> None:
        """``uid`` is being dialled by this channel (DialBegin)."""
        if isinstance(self.dialing, set):
            self.dialing.add(uid)
        else:
            self.dialing = {uid}  # the first one: a set of its own replaces the shared NOTHING

    def dialled(self, uid: str) -> None:
        """The Dial of ``uid`` ended (DialEnd), whatever its outcome."""
        if isinstance(self.dialing, set):
            self.dialing.discard(uid)
            if not self.dialing:
                self.dialing = NOTHING  # an empty set is still 216 bytes

    def key_down(self, digit: str) -> None:
        if isinstance(self.dtmf_down, set):
            self.dtmf_down.add(digit)
        else:
            self.dtmf_down = {digit}

    def key_up(self, digit: str) -> bool:
        """The key is released: whether it had been seen pressed."""
        if digit not in self.dtmf_down or not isinstance(self.dtmf_down, set):
            return False
        self.dtmf_down.discard(digit)
        if not self.dtmf_down:
            self.dtmf_down = NOTHING
        return True

    def set_variable(self, name: str, value: str) -> None:
        self.variables = self.variables.with_value(name, value)

    @property
    def is_local(self) -> bool:
        return self.name.startswith("Local/")

    @property
    def local_half(self) -> str:
        """``"1"`` / ``"2"`` for Local channels, ``""`` otherwise."""
        return self.name[-1] if self.is_local and self.name[-2:-1] == ";" else ""


@dataclass(slots=True)
class Call:
    call_id: str  # the Linkedid of the originating channel
    created: float
    caller_num: str = ""  # normalised (callbridge.calls.numbers)
    caller_name: str = ""
    raw_caller_num: str = ""  # as the PBX has it
    caller_channel: str = ""  # channel name of the originating channel
    hotline: str | None = None
    state: CallState = CallState.OFFERED
    offered: bool = False  # call.offered emitted
    answered: float | None = None
    agent: str = ""  # endpoint of the party that answered last
    queue: str = ""
    channels: Uids = field(default_factory=Uids)  # uniqueids
    cause: int | None = None
    cause_txt: str = ""
    transfers_seen: Set[tuple[str, ...]] = NOTHING  # duplicate transfer-event guard (see saw_transfer)
    transfers: list[Transfer] = NO_TRANSFERS  # transfers whose outcome is not known yet: see add_transfer
    picked_up: bool = False  # this call only picked another one up (the picker's own channel): not a call

    def add_transfer(self, xfer: Transfer) -> None:
        if self.transfers is NO_TRANSFERS:
            self.transfers = [xfer]
        else:
            self.transfers.append(xfer)

    def saw_transfer(self, key: tuple[str, ...]) -> bool:
        """Whether this transfer event was seen before; remembered from now on."""
        if key in self.transfers_seen:
            return True
        self.transfers_seen = self.transfers_seen | {key}  # rare: a fresh small set replaces the shared empty one
        return False


@dataclass(slots=True)
class Transfer:
    """A transfer reported by Asterisk (a phone's or callbridge's) until its one outcome is known.

    ``attempts`` are the legs dialled for it (by the transferee, or by channels born after the transfer);
    ``failure`` is set once every attempt ended unanswered, and the outcome waits for the caller's fate."""

    kind: str  # blind | attended
    transferer: str
    transferee: str  # channel name
    transferee_uid: str
    target: str
    started: float
    seq: int  # the tracker's event number of the transfer (later channels may dial for it)
    attempts: set[str] = field(default_factory=set)  # uniqueids of the legs dialled for the transfer
    pending: set[str] = field(default_factory=set)  # attempts still ringing
    failure: TransferFailure | None = None
    holders: list[Call] = field(default_factory=list)  # the calls whose events may decide it (the caller's first)


@dataclass(slots=True)
class TransferFailure:
    reason: str  # busy | no_answer | unreachable | congestion | rejected | caller_hangup | refused
    cause: int | None  # Q.850
    sip_status: str  # TechCause
    channel: str  # the failed leg ("" when no leg was created)


@dataclass(slots=True)
class Bridge:
    bridge_id: str
    bridge_type: str = ""
    technology: str = ""
    creator: str = ""
    name: str = ""
    channels: Uids = field(default_factory=Uids)  # uniqueids


@dataclass(slots=True)
class QueueCaller:
    uniqueid: str
    channel: str
    caller_num: str
    position: int
    joined: float
    priority: int | None = None  # QUEUE_PRIO, known only from QueueEntry (QueueStatus)
    call_id: str = ""
    abandoned: bool = False


@dataclass(slots=True)
class QueueMemberState:
    interface: str
    name: str
    status: int = 0
    paused: bool = False
    in_call: bool = False


#: :attr:`Queue.top` when no bound is known (a queue built with its callers): the next leave looks at them all.
UNKNOWN_TOP = 1 << 62


@dataclass(slots=True)
class Queue:
    name: str
    callers: dict[str, QueueCaller] = field(default_factory=dict)  # by uniqueid
    members: dict[str, QueueMemberState] = field(default_factory=dict)  # by interface (or name)
    offers: dict[str, str] = field(default_factory=dict)  # member interface → uniqueid of the caller it rings
    strategy: str = ""
    # ``offers`` the other way round, uniqueid → the interfaces ringing it (an index of the tracker's, see
    # rooms.offer): a caller hanging up finds its offers without a pass over every member of the queue.
    offered: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False,
                                                metadata={"index": True})  # fmt: skip
    # No caller's position is above this (an index of the tracker's, not a fact: see rooms.remove_caller):
    # a caller leaving at or behind it has nobody behind to move up, so the leave costs no scan of the queue.
    top: int = field(default=UNKNOWN_TOP, compare=False, repr=False, metadata={"index": True})

    def ordered_callers(self) -> list[QueueCaller]:
        return sorted(self.callers.values(), key=lambda c: (c.position, c.joined))


@dataclass(slots=True)
class ConferenceParty:
    uniqueid: str
    channel: str
    num: str
    name: str
    call_id: str
    admin: bool = False
    muted: bool = False


@dataclass(slots=True)
class Conference:
    room: str
    bridge_id: str = ""
    parties: dict[str, ConferenceParty] = field(default_factory=dict)  # by uniqueid


@dataclass(frozen=True, slots=True)
class KnownCall:
    """A call callbridge offered before it restarted, as its records have it (adopted at the first resync)."""

    call_id: str
    hotline: str | None
    caller_num: str = ""
    offered_ts: float = 0.0
    answered_ts: float | None = None
    agent: str = ""
    queue: str = ""
    last_seen: float = 0.0  # the last moment it was known alive (its last event, or callbridge's last one)


new_channel: Callable[[str, str, str, float, int], Channel] = quick_constructor(
    Channel, "uniqueid", "name", "linkedid", "created", "first_seq"
)
new_call: Callable[[str, float], Call] = quick_constructor(Call, "call_id", "created")
new_bridge: Callable[[str, str, str, str, str], Bridge] = quick_constructor(
    Bridge, "bridge_id", "bridge_type", "technology", "creator", "name"
)
new_queue_caller: Callable[[str, str, str, int, float, str], QueueCaller] = quick_constructor(
    QueueCaller, "uniqueid", "channel", "caller_num", "position", "joined", "call_id"
)
