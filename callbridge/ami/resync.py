"""Post-connect resync: read the full picture from Asterisk after every (re)connect.

Events may have been missed while we were disconnected (or we attach mid-call), so the tracker is
rebuilt from Asterisk's list actions, in this order:

1. ``CoreShowChannels`` → CoreShowChannel … CoreShowChannelsComplete
2. ``BridgeList`` → BridgeListItem … BridgeListComplete, then per bridge ``BridgeInfo`` →
   BridgeInfoChannel … BridgeInfoComplete (only the Complete event names the bridge)
3. ``QueueStatus`` → QueueParams / QueueMember / QueueEntry … QueueStatusComplete
4. ``ConfbridgeListRooms`` → ConfbridgeListRooms … Complete, then per room ``ConfbridgeList`` →
   ConfbridgeList … ConfbridgeListComplete

Every list keeps its ``…Complete`` event as its last item. An ``Error`` reply to a list action means
"nothing to list" for Asterisk (``No active conferences.``, a bridge or room that vanished between
two actions) and contributes no events; a timeout or a lost connection propagates (the connection
is not usable, the client reconnects).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from callbridge.errors import AmiActionError

from .actions import (
    Action,
    BridgeInfo,
    BridgeList,
    ConfbridgeList,
    ConfbridgeListRooms,
    CoreShowChannels,
    QueueStatus,
)
from .framing import AmiMessage
from .protocol import RawReply

log = structlog.get_logger(__name__)

Request = Callable[[Action], Awaitable[RawReply]]


async def _list(request: Request, action: Action) -> tuple[AmiMessage, ...]:
    try:
        reply = await request(action)
    except AmiActionError as exc:
        log.info("ami.resync_list_empty", action=action.name, reason=exc.reason)
        return ()
    return reply.events


def _items(events: tuple[AmiMessage, ...], event_name: str, header: str) -> list[str]:
    """Values of ``header`` in the item events (not the Complete marker), in order, deduplicated."""
    seen: dict[str, None] = {}
    for msg in events:
        if msg.name == event_name and (value := msg.get(header)):
            seen.setdefault(value, None)
    return list(seen)


async def collect_resync(request: Request) -> list[AmiMessage]:
    """Run the resync actions one after another and return all their list events in order."""
    out: list[AmiMessage] = []
    out += await _list(request, CoreShowChannels())

    bridges = await _list(request, BridgeList())
    out += bridges
    for bridge_id in _items(bridges, "BridgeListItem", "BridgeUniqueid"):
        out += await _list(request, BridgeInfo(bridge_uniqueid=bridge_id))

    out += await _list(request, QueueStatus())

    rooms = await _list(request, ConfbridgeListRooms())
    out += rooms
    for room in _items(rooms, "ConfbridgeListRooms", "Conference"):
        out += await _list(request, ConfbridgeList(conference=room))
    return out
