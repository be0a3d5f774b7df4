"""The catalogue of typed AMI actions: one frozen dataclass per action callbridge sends, in one namespace.

Everything that sends (the client, the engine's effects, the simulator's tests) imports actions from here;
``to_headers()`` gives an action's checked wire headers. The actions are defined by family, each module
small:

* :mod:`.base`: the :class:`Action` base, :func:`hdr` and the checking :class:`HeaderBuilder` (why typed, and
  how booleans are rendered, is explained there);
* :mod:`.session`: Login/Challenge/Logoff/Events/Ping and the status queries;
* :mod:`.call`: call control (Originate, Redirect, transfers, Hangup, variables, DTMF, UserEvent) and the
  ConfBridge actions;
* :mod:`.queue`: queue members, status and waiting callers.
"""

from __future__ import annotations

from .base import Action as Action
from .base import BoolStyle as BoolStyle
from .base import Header as Header
from .base import HeaderBuilder as HeaderBuilder
from .base import hdr as hdr
from .call import Atxfer as Atxfer
from .call import BlindTransfer as BlindTransfer
from .call import Bridge as Bridge
from .call import CancelAtxfer as CancelAtxfer
from .call import ConfbridgeKick as ConfbridgeKick
from .call import ConfbridgeList as ConfbridgeList
from .call import ConfbridgeListRooms as ConfbridgeListRooms
from .call import ConfbridgeMute as ConfbridgeMute
from .call import ConfbridgeUnmute as ConfbridgeUnmute
from .call import Getvar as Getvar
from .call import Hangup as Hangup
from .call import Originate as Originate
from .call import PlayDTMF as PlayDTMF
from .call import Redirect as Redirect
from .call import Setvar as Setvar
from .call import UserEvent as UserEvent
from .queue import QueueAdd as QueueAdd
from .queue import QueueChangePriorityCaller as QueueChangePriorityCaller
from .queue import QueuePause as QueuePause
from .queue import QueueRemove as QueueRemove
from .queue import QueueStatus as QueueStatus
from .queue import QueueSummary as QueueSummary
from .queue import QueueWithdrawCaller as QueueWithdrawCaller
from .session import BridgeInfo as BridgeInfo
from .session import BridgeList as BridgeList
from .session import Challenge as Challenge
from .session import CoreSettings as CoreSettings
from .session import CoreShowChannels as CoreShowChannels
from .session import CoreStatus as CoreStatus
from .session import Events as Events
from .session import Login as Login
from .session import Logoff as Logoff
from .session import Ping as Ping
from .session import md5_key as md5_key
