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

The classes are defined by family, each module under the size rule and importable on its own:

* :mod:`~callbridge.ami.event_types_base`: ``ChannelSnapshot``, ``BridgeSnapshot``, ``endpoint_of``, the bases
  (``AmiEvent``, ``GenericEvent``, ``ChannelEvent``) and the fast ``__init__`` every event class gets;
* :mod:`~callbridge.ami.event_types_channel`: channels, dialling, bridges, transfers, hold/music/DTMF and the
  channel/bridge resync list items;
* :mod:`~callbridge.ami.event_types_queue`: queue callers, agents, members and the QueueStatus list items;
* :mod:`~callbridge.ami.event_types_system`: ConfBridge, OriginateResponse, UserEvent, FullyBooted, Shutdown.

This module only re-exports them, so every existing import keeps working and each event type remains one
class object (the decoders' dispatch tables and the tracker's handler tables are keyed by the class).
"""

from __future__ import annotations

from callbridge.ami.event_types_base import AmiEvent as AmiEvent
from callbridge.ami.event_types_base import BridgeSnapshot as BridgeSnapshot
from callbridge.ami.event_types_base import ChannelEvent as ChannelEvent
from callbridge.ami.event_types_base import ChannelSnapshot as ChannelSnapshot
from callbridge.ami.event_types_base import GenericEvent as GenericEvent
from callbridge.ami.event_types_base import endpoint_of as endpoint_of
from callbridge.ami.event_types_channel import AttendedTransfer as AttendedTransfer
from callbridge.ami.event_types_channel import BlindTransfer as BlindTransfer
from callbridge.ami.event_types_channel import BridgeCreate as BridgeCreate
from callbridge.ami.event_types_channel import BridgeDestroy as BridgeDestroy
from callbridge.ami.event_types_channel import BridgeEnter as BridgeEnter
from callbridge.ami.event_types_channel import BridgeInfoChannel as BridgeInfoChannel
from callbridge.ami.event_types_channel import BridgeInfoComplete as BridgeInfoComplete
from callbridge.ami.event_types_channel import BridgeLeave as BridgeLeave
from callbridge.ami.event_types_channel import BridgeListItem as BridgeListItem
from callbridge.ami.event_types_channel import BridgeMerge as BridgeMerge
from callbridge.ami.event_types_channel import CoreShowChannel as CoreShowChannel
from callbridge.ami.event_types_channel import DialBegin as DialBegin
from callbridge.ami.event_types_channel import DialEnd as DialEnd
from callbridge.ami.event_types_channel import DialState as DialState
from callbridge.ami.event_types_channel import DTMFBegin as DTMFBegin
from callbridge.ami.event_types_channel import DTMFEnd as DTMFEnd
from callbridge.ami.event_types_channel import Hangup as Hangup
from callbridge.ami.event_types_channel import HangupRequest as HangupRequest
from callbridge.ami.event_types_channel import Hold as Hold
from callbridge.ami.event_types_channel import LocalBridge as LocalBridge
from callbridge.ami.event_types_channel import MusicOnHoldStart as MusicOnHoldStart
from callbridge.ami.event_types_channel import MusicOnHoldStop as MusicOnHoldStop
from callbridge.ami.event_types_channel import NewCallerid as NewCallerid
from callbridge.ami.event_types_channel import Newchannel as Newchannel
from callbridge.ami.event_types_channel import NewConnectedLine as NewConnectedLine
from callbridge.ami.event_types_channel import Newstate as Newstate
from callbridge.ami.event_types_channel import Pickup as Pickup
from callbridge.ami.event_types_channel import SoftHangupRequest as SoftHangupRequest
from callbridge.ami.event_types_channel import Unhold as Unhold
from callbridge.ami.event_types_channel import VarSet as VarSet
from callbridge.ami.event_types_queue import AgentCalled as AgentCalled
from callbridge.ami.event_types_queue import AgentComplete as AgentComplete
from callbridge.ami.event_types_queue import AgentConnect as AgentConnect
from callbridge.ami.event_types_queue import AgentEvent as AgentEvent
from callbridge.ami.event_types_queue import AgentRingNoAnswer as AgentRingNoAnswer
from callbridge.ami.event_types_queue import QueueCallerAbandon as QueueCallerAbandon
from callbridge.ami.event_types_queue import QueueCallerJoin as QueueCallerJoin
from callbridge.ami.event_types_queue import QueueCallerLeave as QueueCallerLeave
from callbridge.ami.event_types_queue import QueueEntry as QueueEntry
from callbridge.ami.event_types_queue import QueueMember as QueueMember
from callbridge.ami.event_types_queue import QueueMemberAdded as QueueMemberAdded
from callbridge.ami.event_types_queue import QueueMemberEvent as QueueMemberEvent
from callbridge.ami.event_types_queue import QueueMemberPause as QueueMemberPause
from callbridge.ami.event_types_queue import QueueMemberRemoved as QueueMemberRemoved
from callbridge.ami.event_types_queue import QueueMemberStatus as QueueMemberStatus
from callbridge.ami.event_types_queue import QueueParams as QueueParams
from callbridge.ami.event_types_system import ConfbridgeEnd as ConfbridgeEnd
from callbridge.ami.event_types_system import ConfbridgeJoin as ConfbridgeJoin
from callbridge.ami.event_types_system import ConfbridgeLeave as ConfbridgeLeave
from callbridge.ami.event_types_system import ConfbridgeList as ConfbridgeList
from callbridge.ami.event_types_system import ConfbridgeListRooms as ConfbridgeListRooms
from callbridge.ami.event_types_system import ConfbridgeMute as ConfbridgeMute
from callbridge.ami.event_types_system import ConfbridgeStart as ConfbridgeStart
from callbridge.ami.event_types_system import ConfbridgeUnmute as ConfbridgeUnmute
from callbridge.ami.event_types_system import FullyBooted as FullyBooted
from callbridge.ami.event_types_system import OriginateResponse as OriginateResponse
from callbridge.ami.event_types_system import Shutdown as Shutdown
from callbridge.ami.event_types_system import UserEvent as UserEvent
