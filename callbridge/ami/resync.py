"""Post-connect resync: read the full picture from Asterisk after every (re)connect.

Events may have been missed while we were disconnected (or we attach mid-call), so the tracker is
rebuilt from Asterisk's list actions. They are pipelined (the four lists together, then the details
they call for) but their events are returned in this order:

1. ``CoreShowChannels`` → CoreShowChannel … CoreShowChannelsComplete
2. ``BridgeList`` → BridgeListItem … BridgeListComplete, then per bridge ``BridgeInfo`` →
   BridgeInfoChannel … BridgeInfoComplete (only the Complete event names the bridge)
3. ``QueueStatus`` → QueueParams / QueueMember / QueueEntry … QueueStatusComplete
4. ``ConfbridgeListRooms`` → ConfbridgeListRooms … Complete, then per room ``ConfbridgeList`` →
   ConfbridgeList … ConfbridgeListComplete

After the channels come the variables callbridge left on the first channel (Uniqueid == Linkedid) of
each call that left ``cb-inbound``, read with ``Getvar`` (:data:`RESYNC_VARIABLES`) and handed on as
``VarSet`` events of that channel, as if Asterisk had just set them: ``CB_HOTLINE`` (the rendered
``cb-inbound`` sets it) names the hotline a call was offered on even once the caller sits in ``cb-to-110``
at ``s``, after a restart of callbridge that lost, or never had, the call.

Every list keeps its ``…Complete`` event as its last item. An ``Error`` reply to a list action means
"nothing to list" for Asterisk (``No active conferences.``, a bridge or room that vanished between
two actions) and contributes no events; a timeout or a lost connection propagates (the connection
is not usable, the client reconnects).
"""

from __future__ import annotations

import asyncio
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
    Getvar,
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


#: List actions in flight at once during a resync. Asterisk answers one session's actions in turn, so
#: pipelining saves the round trips (thousands of BridgeInfo on a busy PBX) without loading it more.
PIPELINE = 64


async def _lists(request: Request, actions: list[Action]) -> list[tuple[AmiMessage, ...]]:
    """Run ``actions`` pipelined (at most PIPELINE in flight); results in the order of ``actions``."""
    window = asyncio.Semaphore(PIPELINE)

    async def one(action: Action) -> tuple[AmiMessage, ...]:
        async with window:
            return await _list(request, action)

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(action)) for action in actions]
    return [task.result() for task in tasks]


#: Channel variables read back from a call's first channel at a resync (see the module doc).
RESYNC_VARIABLES = ("CB_HOTLINE",)


def _left_inbound(channel: AmiMessage) -> bool:
    """In one of callbridge's contexts after ``cb-inbound`` (``cb-to-110``, ``cb-back`` …): there its DID no
    longer names its hotline. A caller still in ``cb-inbound`` (most, waiting or talking) needs no Getvar,
    which keeps a resync of thousands of waiting callers as fast as before."""
    context = channel.get("Context")
    return context.startswith("cb-") and context != "cb-inbound"


async def _variables(request: Request, channels: tuple[AmiMessage, ...]) -> list[AmiMessage]:
    """``VarSet`` events of the :data:`RESYNC_VARIABLES` set on each call's first channel (pipelined Getvar;
    a channel gone in between, or a variable not set, gives nothing)."""
    firsts = [m for m in channels if m.name == "CoreShowChannel" and m.get("Uniqueid")
              and m.get("Uniqueid") == m.get("Linkedid") and m.get("Channel") and _left_inbound(m)]  # fmt: skip
    wanted = [(m, v) for m in firsts for v in RESYNC_VARIABLES]
    window = asyncio.Semaphore(PIPELINE)

    async def one(channel: AmiMessage, variable: str) -> str:
        async with window:
            try:
                reply = await request(Getvar(channel=channel.get("Channel"), variable=variable))
            except AmiActionError:
                return ""
            return reply.response.get("Value")

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(m, v)) for m, v in wanted]
    out = []
    for (channel, variable), task in zip(wanted, tasks, strict=True):
        if value := task.result():
            snapshot = [(k, val) for k, val in channel.headers if k not in ("Event", "ActionID")]
            out.append(AmiMessage((("Event", "VarSet"), *snapshot, ("Variable", variable), ("Value", value))))
    return out


async def collect_resync(request: Request) -> list[AmiMessage]:
    """Run the resync actions and return all their list events in the documented order.

    The four top-level lists go out together, then every BridgeInfo / ConfbridgeList they call for;
    the output order is the same as if they had run one after another.
    """
    channels, bridges, queues, rooms = await _lists(
        request, [CoreShowChannels(), BridgeList(), QueueStatus(), ConfbridgeListRooms()]
    )
    bridge_ids = _items(bridges, "BridgeListItem", "BridgeUniqueid")
    room_ids = _items(rooms, "ConfbridgeListRooms", "Conference")
    details, variables = await asyncio.gather(_lists(
        request,
        [BridgeInfo(bridge_uniqueid=b) for b in bridge_ids] + [ConfbridgeList(conference=r) for r in room_ids],
    ), _variables(request, channels))  # fmt: skip
    bridge_infos, room_lists = details[: len(bridge_ids)], details[len(bridge_ids) :]
    out: list[AmiMessage] = [*channels, *variables, *bridges]
    for info in bridge_infos:
        out += info
    out += queues
    out += rooms
    for room in room_lists:
        out += room
    return out
