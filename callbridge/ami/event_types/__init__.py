"""The catalogue of typed AMI events: every event class callbridge reasons about, in one namespace.

The core (calls/, engine/) imports event *types* from here and nothing else of ami/: this package defines
classes only (no decoding, no C module, nothing done at import). :func:`callbridge.ami.decode.decode` builds
them from messages; only the kinds callbridge reasons about are typed, every other event stays available as
:class:`GenericEvent` (name + raw headers). Raw header dicts never travel past the decoder.

* Channel snapshots repeat in almost every event; the few low-cardinality strings (state, context, exten)
  are interned so that thousands of stored snapshots share them.
* Asterisk writes ``<unknown>`` for an unset caller ID; snapshots carry ``""`` instead so that callers test
  one thing ("is there a number?").
* Missing or malformed fields never raise: numbers fall back to 0 / ``None``, strings to ``""``.

The classes are defined by family, each module under the size rule; import them from this package (each
event type is one class object: the decoders' dispatch tables and the tracker's handler tables are keyed by
the class):

* :mod:`.base`: ``ChannelSnapshot``, ``BridgeSnapshot``, ``endpoint_of`` and the bases (``AmiEvent``,
  ``GenericEvent``, ``ChannelEvent``);
* :mod:`.channel`: channels, dialling, bridges, transfers, hold/music/DTMF and the channel/bridge resync list
  items;
* :mod:`.queue`: queue callers, agents, members and the QueueStatus list items;
* :mod:`.system`: ConfBridge, OriginateResponse, UserEvent, FullyBooted, Shutdown.
"""

from __future__ import annotations

from callbridge.ami.event_types.base import AmiEvent as AmiEvent
from callbridge.ami.event_types.base import BridgeSnapshot as BridgeSnapshot
from callbridge.ami.event_types.base import ChannelEvent as ChannelEvent
from callbridge.ami.event_types.base import ChannelSnapshot as ChannelSnapshot
from callbridge.ami.event_types.base import GenericEvent as GenericEvent
from callbridge.ami.event_types.base import endpoint_of as endpoint_of
from callbridge.ami.event_types.channel import AttendedTransfer as AttendedTransfer
from callbridge.ami.event_types.channel import BlindTransfer as BlindTransfer
from callbridge.ami.event_types.channel import BridgeCreate as BridgeCreate
from callbridge.ami.event_types.channel import BridgeDestroy as BridgeDestroy
from callbridge.ami.event_types.channel import BridgeEnter as BridgeEnter
from callbridge.ami.event_types.channel import BridgeInfoChannel as BridgeInfoChannel
from callbridge.ami.event_types.channel import BridgeInfoComplete as BridgeInfoComplete
from callbridge.ami.event_types.channel import BridgeLeave as BridgeLeave
from callbridge.ami.event_types.channel import BridgeListItem as BridgeListItem
from callbridge.ami.event_types.channel import BridgeMerge as BridgeMerge
from callbridge.ami.event_types.channel import CoreShowChannel as CoreShowChannel
from callbridge.ami.event_types.channel import DialBegin as DialBegin
from callbridge.ami.event_types.channel import DialEnd as DialEnd
from callbridge.ami.event_types.channel import DialState as DialState
from callbridge.ami.event_types.channel import DTMFBegin as DTMFBegin
from callbridge.ami.event_types.channel import DTMFEnd as DTMFEnd
from callbridge.ami.event_types.channel import Hangup as Hangup
from callbridge.ami.event_types.channel import HangupRequest as HangupRequest
from callbridge.ami.event_types.channel import Hold as Hold
from callbridge.ami.event_types.channel import LocalBridge as LocalBridge
from callbridge.ami.event_types.channel import MusicOnHoldStart as MusicOnHoldStart
from callbridge.ami.event_types.channel import MusicOnHoldStop as MusicOnHoldStop
from callbridge.ami.event_types.channel import NewCallerid as NewCallerid
from callbridge.ami.event_types.channel import Newchannel as Newchannel
from callbridge.ami.event_types.channel import NewConnectedLine as NewConnectedLine
from callbridge.ami.event_types.channel import Newstate as Newstate
from callbridge.ami.event_types.channel import Pickup as Pickup
from callbridge.ami.event_types.channel import SoftHangupRequest as SoftHangupRequest
from callbridge.ami.event_types.channel import Unhold as Unhold
from callbridge.ami.event_types.channel import VarSet as VarSet
from callbridge.ami.event_types.queue import AgentCalled as AgentCalled
from callbridge.ami.event_types.queue import AgentComplete as AgentComplete
from callbridge.ami.event_types.queue import AgentConnect as AgentConnect
from callbridge.ami.event_types.queue import AgentEvent as AgentEvent
from callbridge.ami.event_types.queue import AgentRingNoAnswer as AgentRingNoAnswer
from callbridge.ami.event_types.queue import QueueCallerAbandon as QueueCallerAbandon
from callbridge.ami.event_types.queue import QueueCallerEvent as QueueCallerEvent
from callbridge.ami.event_types.queue import QueueCallerJoin as QueueCallerJoin
from callbridge.ami.event_types.queue import QueueCallerLeave as QueueCallerLeave
from callbridge.ami.event_types.queue import QueueEntry as QueueEntry
from callbridge.ami.event_types.queue import QueueMember as QueueMember
from callbridge.ami.event_types.queue import QueueMemberAdded as QueueMemberAdded
from callbridge.ami.event_types.queue import QueueMemberEvent as QueueMemberEvent
from callbridge.ami.event_types.queue import QueueMemberPause as QueueMemberPause
from callbridge.ami.event_types.queue import QueueMemberRemoved as QueueMemberRemoved
from callbridge.ami.event_types.queue import QueueMemberStatus as QueueMemberStatus
from callbridge.ami.event_types.queue import QueueParams as QueueParams
from callbridge.ami.event_types.system import ConfbridgeEnd as ConfbridgeEnd
from callbridge.ami.event_types.system import ConfbridgeJoin as ConfbridgeJoin
from callbridge.ami.event_types.system import ConfbridgeLeave as ConfbridgeLeave
from callbridge.ami.event_types.system import ConfbridgeList as ConfbridgeList
from callbridge.ami.event_types.system import ConfbridgeListRooms as ConfbridgeListRooms
from callbridge.ami.event_types.system import ConfbridgeMute as ConfbridgeMute
from callbridge.ami.event_types.system import ConfbridgeStart as ConfbridgeStart
from callbridge.ami.event_types.system import ConfbridgeUnmute as ConfbridgeUnmute
from callbridge.ami.event_types.system import FullyBooted as FullyBooted
from callbridge.ami.event_types.system import OriginateResponse as OriginateResponse
from callbridge.ami.event_types.system import Shutdown as Shutdown
from callbridge.ami.event_types.system import UserEvent as UserEvent
