"""Typed AMI actions: one frozen dataclass per action callbridge sends (``to_headers()`` gives the wire headers).

The actions are defined by family, each module small and importable on its own; this module re-exports them
all, so ``from callbridge.ami.actions import X`` (and ``actions.X``) keeps working:

* :mod:`~callbridge.ami.actions_base`: the :class:`Action` base, :func:`hdr` and the checking header builder
  (why typed, and how booleans are rendered, is explained there);
* :mod:`~callbridge.ami.actions_session`: Login/Challenge/Logoff/Events/Ping and the status queries;
* :mod:`~callbridge.ami.actions_call`: call control (Originate, Redirect, transfers, Hangup, variables,
  DTMF, UserEvent) and the ConfBridge actions;
* :mod:`~callbridge.ami.actions_queue`: queue members, status and waiting callers.
"""

from __future__ import annotations

from .actions_base import Action as Action
from .actions_base import BoolStyle as BoolStyle
from .actions_base import Header as Header
from .actions_base import hdr as hdr
from .actions_call import Atxfer as Atxfer
from .actions_call import BlindTransfer as BlindTransfer
from .actions_call import Bridge as Bridge
from .actions_call import CancelAtxfer as CancelAtxfer
from .actions_call import ConfbridgeKick as ConfbridgeKick
from .actions_call import ConfbridgeList as ConfbridgeList
from .actions_call import ConfbridgeListRooms as ConfbridgeListRooms
from .actions_call import ConfbridgeMute as ConfbridgeMute
from .actions_call import ConfbridgeUnmute as ConfbridgeUnmute
from .actions_call import Getvar as Getvar
from .actions_call import Hangup as Hangup
from .actions_call import Originate as Originate
from .actions_call import PlayDTMF as PlayDTMF
from .actions_call import Redirect as Redirect
from .actions_call import Setvar as Setvar
from .actions_call import UserEvent as UserEvent
from .actions_queue import QueueAdd as QueueAdd
from .actions_queue import QueueChangePriorityCaller as QueueChangePriorityCaller
from .actions_queue import QueuePause as QueuePause
from .actions_queue import QueueRemove as QueueRemove
from .actions_queue import QueueStatus as QueueStatus
from .actions_queue import QueueSummary as QueueSummary
from .actions_queue import QueueWithdrawCaller as QueueWithdrawCaller
from .actions_session import BridgeInfo as BridgeInfo
from .actions_session import BridgeList as BridgeList
from .actions_session import Challenge as Challenge
from .actions_session import CoreSettings as CoreSettings
from .actions_session import CoreShowChannels as CoreShowChannels
from .actions_session import CoreStatus as CoreStatus
from .actions_session import Events as Events
from .actions_session import Login as Login
from .actions_session import Logoff as Logoff
from .actions_session import Ping as Ping
from .actions_session import md5_key as md5_key
