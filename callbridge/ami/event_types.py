"""The typed AMI event classes (decoded by :func:`callbridge.ami.events.decode`; import them from there).

Only the kinds callbridge reasons about are typed; every other event stays available as
:class:`GenericEvent` (name + raw headers). Raw header dicts never travel past this module.

Why it looks the way it does:

* ``decode`` sits on the hot path (hundreds of thousands of events per second in the benchmark), so it is
  one dict dispatch on the event name and plain ``dict.get`` look-ups — no validation library.
* Channel snapshots repeat in almost every event; the few low-cardinality strings (state, context,
  exten) are interned so that thousands of stored snapshots share them.
* Asterisk writes ``<unknown>`` for an unset caller ID; snapshots carry ``""`` instead so that callers
  test one thing ("is there a number?").
* Missing or malformed fields never raise: numbers fall back to 0 / ``None``, strings to ``""``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, NamedTuple


class ChannelSnapshot(NamedTuple):
    """One channel as Asterisk describes it in an event (optionally under a prefix such as ``Dest``).

    A NamedTuple rather than a frozen dataclass on purpose: nearly every event carries one, and a frozen
    dataclass costs ~5x more to build (its ``__init__`` goes through ``object.__setattr__`` per field),
    which dominated decoding. It is just as immutable and has no per-instance ``__dict__``.
    """

    channel: str
    channel_state: str  # numeric AST_STATE as text ("6" = Up)
    state_desc: str  # "Down" | "Ring" | "Ringing" | "Up" | "Busy" …
    caller_num: str  # "" when Asterisk says <unknown>
    caller_name: str
    connected_num: str
    connected_name: str
    context: str
    exten: str
    priority: str  # the *dialplan* priority (never the queue priority)
    uniqueid: str
    linkedid: str

    @property
    def is_local(self) -> bool:
        return self.channel.startswith("Local/")

    @property
    def endpoint(self) -> str:
        """``PJSIP/agent1001-00000004`` → ``agent1001``; ``Local/1002@internal-0007;1`` → ``1002@internal``."""
        return endpoint_of(self.channel)


class BridgeSnapshot(NamedTuple):
    bridge_id: str  # BridgeUniqueid
    bridge_type: str  # "basic" | "base" (ConfBridge) | "holding" …
    technology: str  # "simple_bridge" | "native_rtp" | "softmix" …
    creator: str  # "ConfBridge" for conference rooms
    name: str
    num_channels: int


def endpoint_of(channel: str) -> str:
    """The stable part of a channel name (technology and sequence number removed)."""
    _, _, rest = channel.partition("/")
    if not rest:
        return channel
    rest = rest.rsplit(";", 1)[0]  # the ;1/;2 half of Local and CBAnn channels
    head, dash, tail = rest.rpartition("-")
    # strip() leaves "" exactly when every character is a hex digit (cheaper than all() over a generator).
    return head if dash and tail and not tail.strip("0123456789abcdef") else rest


# --- the events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiEvent:
    """Base of every decoded event. ``timestamp`` is Asterisk's ``Timestamp`` header (timestampevents)."""

    NAME: ClassVar[str] = ""
    timestamp: float | None = None

    @property
    def event_name(self) -> str:
        return self.NAME


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericEvent(AmiEvent):
    """Any event callbridge does not type; headers kept in wire order."""

    name: str
    headers: tuple[tuple[str, str], ...]

    @property
    def event_name(self) -> str:
        return self.name

    def get(self, header: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == header:
                return value
        return default


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(AmiEvent):
    snap: ChannelSnapshot


# Channel life cycle
@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel(ChannelEvent):
    NAME = "Newchannel"


@dataclass(frozen=True, slots=True, kw_only=True)
class Newstate(ChannelEvent):
    NAME = "Newstate"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCallerid(ChannelEvent):
    NAME = "NewCallerid"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewConnectedLine(ChannelEvent):
    NAME = "NewConnectedLine"


@dataclass(frozen=True, slots=True, kw_only=True)
class VarSet(ChannelEvent):
    NAME = "VarSet"
    variable: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    NAME = "Hangup"
    cause: int | None  # Q.850
    cause_txt: str
    tech_cause: str  # e.g. the SIP status, "" when absent


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupRequest(ChannelEvent):
    NAME = "HangupRequest"
    cause: int | None  # Q.850; absent when the far end simply hung up
    tech_cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftHangupRequest(ChannelEvent):
    NAME = "SoftHangupRequest"
    cause: int | None  # an internal flag set (4 shutdown, 16 dialplan ended, 32 explicit), NOT Q.850


# Dialling (Originate's own DialBegin/DialEnd carry only the Dest* side, hence ``snap`` may be None)
@dataclass(frozen=True, slots=True, kw_only=True)
class DialBegin(AmiEvent):
    NAME = "DialBegin"
    snap: ChannelSnapshot | None
    dest: ChannelSnapshot
    dial_string: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DialState(AmiEvent):
    NAME = "DialState"
    snap: ChannelSnapshot | None
    dest: ChannelSnapshot
    dial_status: str  # RINGING | PROCEEDING | PROGRESS …


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd(AmiEvent):
    NAME = "DialEnd"
    snap: ChannelSnapshot | None
    dest: ChannelSnapshot
    dial_status: str  # ANSWER | BUSY | NOANSWER | CANCEL | CONGESTION | CHANUNAVAIL
    forward: str


# Bridges
@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeCreate(AmiEvent):
    NAME = "BridgeCreate"
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDestroy(AmiEvent):
    NAME = "BridgeDestroy"
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter(ChannelEvent):
    NAME = "BridgeEnter"
    bridge: BridgeSnapshot
    swap_uniqueid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeave(ChannelEvent):
    NAME = "BridgeLeave"
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeMerge(AmiEvent):
    NAME = "BridgeMerge"
    to_bridge: BridgeSnapshot
    from_bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalBridge(AmiEvent):
    """The two halves of a Local channel were linked (``;1`` faces the dialler, ``;2`` runs the dialplan)."""

    NAME = "LocalBridge"
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot
    context: str
    exten: str
    local_optimization: bool


# Transfers
@dataclass(frozen=True, slots=True, kw_only=True)
class BlindTransfer(AmiEvent):
    NAME = "BlindTransfer"
    result: str  # "Success" even when the destination later fails (scenario 13)
    transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    bridge: BridgeSnapshot
    is_external: bool
    context: str  # the target is Extension@Context
    extension: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttendedTransfer(AmiEvent):
    NAME = "AttendedTransfer"
    result: str
    orig_transferer: ChannelSnapshot | None
    second_transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    target: ChannelSnapshot | None  # TransferTarget*: often a Local/<exten>@<ctx>;1 channel
    orig_bridge_id: str
    second_bridge_id: str
    dest_type: str  # Bridge | App | Link | Threeway | Fail
    dest_bridge_id: str
    dest_app: str
    is_external: bool


# Hold / music / DTMF
@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(ChannelEvent):
    NAME = "Hold"
    music_class: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhold(ChannelEvent):
    NAME = "Unhold"


@dataclass(frozen=True, slots=True, kw_only=True)
class MusicOnHoldStart(ChannelEvent):
    NAME = "MusicOnHoldStart"
    music_class: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MusicOnHoldStop(ChannelEvent):
    NAME = "MusicOnHoldStop"


@dataclass(frozen=True, slots=True, kw_only=True)
class DTMFBegin(ChannelEvent):
    NAME = "DTMFBegin"
    digit: str
    direction: str  # Received | Sent


@dataclass(frozen=True, slots=True, kw_only=True)
class DTMFEnd(ChannelEvent):
    NAME = "DTMFEnd"
    digit: str
    direction: str
    duration_ms: int


# Queues (``Priority`` in these is the dialplan priority; QUEUE_PRIO only shows in QueueEntry)
@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(ChannelEvent):
    NAME = "QueueCallerJoin"
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(ChannelEvent):
    NAME = "QueueCallerLeave"
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    NAME = "QueueCallerAbandon"
    queue: str
    position: int
    original_position: int
    hold_time: int  # seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(ChannelEvent):
    """``snap`` is the queued caller, ``dest`` the member's channel."""

    dest: ChannelSnapshot | None
    queue: str
    member_name: str
    interface: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    NAME = "AgentCalled"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    NAME = "AgentConnect"
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    NAME = "AgentComplete"
    hold_time: int
    talk_time: int
    reason: str  # caller | agent | transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    NAME = "AgentRingNoAnswer"
    ring_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberEvent(AmiEvent):
    queue: str
    member_name: str
    interface: str  # Interface (events) / Location (QueueMember list)
    state_interface: str
    status: int  # AST_DEVICE_* (1 not in use, 2 in use, 3 busy, 5 unavailable, 6 ringing …)
    paused: bool
    paused_reason: str
    in_call: bool
    calls_taken: int
    penalty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberAdded(QueueMemberEvent):
    NAME = "QueueMemberAdded"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved(QueueMemberEvent):
    NAME = "QueueMemberRemoved"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberPause(QueueMemberEvent):
    NAME = "QueueMemberPause"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberStatus(QueueMemberEvent):
    NAME = "QueueMemberStatus"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember(QueueMemberEvent):
    """List item of QueueStatus."""

    NAME = "QueueMember"
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry(AmiEvent):
    """List item of QueueStatus: one waiting caller. ``priority`` IS the queue priority (QUEUE_PRIO)."""

    NAME = "QueueEntry"
    queue: str
    position: int
    channel: str
    uniqueid: str
    caller_num: str
    caller_name: str
    connected_num: str
    connected_name: str
    wait: int  # seconds waited so far
    priority: int
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams(AmiEvent):
    NAME = "QueueParams"
    queue: str
    max: int
    strategy: str
    calls: int
    holdtime: int
    talktime: int
    completed: int
    abandoned: int
    action_id: str


# ConfBridge (rooms are bridges of type "base"/softmix; the CBAnn/<room> announcer gets no BridgeEnter)
@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeStart(AmiEvent):
    NAME = "ConfbridgeStart"
    conference: str
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeEnd(AmiEvent):
    NAME = "ConfbridgeEnd"
    conference: str
    bridge: BridgeSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeJoin(ChannelEvent):
    NAME = "ConfbridgeJoin"
    conference: str
    bridge: BridgeSnapshot
    admin: bool
    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeLeave(ChannelEvent):
    NAME = "ConfbridgeLeave"
    conference: str
    bridge: BridgeSnapshot
    admin: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeMute(ChannelEvent):
    NAME = "ConfbridgeMute"
    conference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeUnmute(ChannelEvent):
    NAME = "ConfbridgeUnmute"
    conference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeList(ChannelEvent):
    """List item of ConfbridgeList: one party of a room."""

    NAME = "ConfbridgeList"
    conference: str
    admin: bool
    muted: bool
    talking: bool
    waiting: bool
    answered_time: int
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeListRooms(AmiEvent):
    NAME = "ConfbridgeListRooms"
    conference: str
    parties: int
    locked: bool
    muted: bool
    action_id: str


# Resync list items
@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    NAME = "CoreShowChannel"
    bridge_id: str  # "" when not bridged
    application: str
    application_data: str
    duration: str  # HH:MM:SS
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeListItem(AmiEvent):
    NAME = "BridgeListItem"
    bridge: BridgeSnapshot
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeInfoChannel(ChannelEvent):
    """List item of BridgeInfo. Asterisk does not repeat the bridge id here: it is in the
    BridgeInfoComplete that ends the list (same ActionID); ``bridge_id`` is filled when known."""

    NAME = "BridgeInfoChannel"
    bridge_id: str
    action_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeInfoComplete(AmiEvent):
    NAME = "BridgeInfoComplete"
    bridge: BridgeSnapshot
    action_id: str


# Misc
@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResponse(AmiEvent):
    NAME = "OriginateResponse"
    action_id: str
    response: str  # Success | Failure
    channel: str  # on failure: the dial string
    uniqueid: str  # on failure: the requested ChannelId (no channel exists)
    reason: int  # 4 answered, 0 failed, 1 hung up, 3 ring timeout, 5 busy, 8 congestion
    context: str
    exten: str
    caller_num: str
    caller_name: str
    application: str
    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(AmiEvent):
    NAME = "UserEvent"
    user_event: str
    snap: ChannelSnapshot | None
    fields: tuple[tuple[str, str], ...]  # the user-supplied headers


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted(AmiEvent):
    NAME = "FullyBooted"
    status: str
    uptime: int | None
    last_reload: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(AmiEvent):
    NAME = "Shutdown"
    shutdown: str  # Cleanly | Uncleanly
    restart: bool


def _install_fast_init(cls: type) -> None:
    """Replace a frozen slotted dataclass's ``__init__`` by one that writes the slots directly.

    Why: the generated ``__init__`` of a frozen dataclass goes through ``object.__setattr__`` per field,
    which made event construction a third of :func:`decode`'s time. Writing through the slot descriptors
    is the same operation without the detour; instances stay frozen (``__setattr__`` still raises) and
    compare, hash and print exactly as before.
    """
    fields = dataclasses.fields(cls)
    namespace: dict[str, object] = {}
    params = []
    for f in fields:
        namespace["set_" + f.name] = getattr(cls, f.name).__set__
        if f.default is not dataclasses.MISSING:
            namespace["default_" + f.name] = f.default
            params.append(f"{f.name}=default_{f.name}")
        else:
            params.append(f.name)
    body = "".join(f"    set_{f.name}(self, {f.name})\n" for f in fields) or "    pass\n"
    exec(f"def __init__(self, *, {', '.join(params)}):\n{body}", namespace)  # noqa: S102 - built from field names
    cls.__init__ = namespace["__init__"]  # type: ignore[misc]


# The module's own names, not AmiEvent.__subclasses__(): ``slots=True`` replaces each class by a new one and
# the discarded originals may still be listed there.
for _cls in [c for c in list(globals().values()) if isinstance(c, type) and issubclass(c, AmiEvent)]:
    _install_fast_init(_cls)
