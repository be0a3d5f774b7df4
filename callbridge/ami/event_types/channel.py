"""Typed AMI events of channels and bridges: channel life cycle, dialling, bridges, transfers, hold/music/DTMF,
and the list items of the channel/bridge resync (CoreShowChannels, BridgeList, BridgeInfo).

One family of the :mod:`callbridge.ami.event_types` catalogue (import the classes from there), split out by
subject to keep modules small. These are the bulk kinds of the ingest path, which the C loop builds itself
(:mod:`callbridge.ami.fast`).
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.ami.event_types.base import (
    AmiEvent,
    BridgeSnapshot,
    ChannelEvent,
    ChannelSnapshot,
)


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


# Pickup (directed Pickup(exten), group pickup ``*8``): ``snap`` is the picking channel, ``target`` the ringing
# leg it took over (Asterisk moves the picker into that leg, so the caller's Dial sees the target answer).
@dataclass(frozen=True, slots=True, kw_only=True)
class Pickup(ChannelEvent):
    NAME = "Pickup"
    target: ChannelSnapshot | None


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
