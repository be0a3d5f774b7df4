"""Status and list AMI actions (core, bridges, queues, ConfBridge), framed as Asterisk 22 frames them."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from callbridge.ami.framing import AmiMessage
from callbridge.sim.channels import Channel
from callbridge.sim.confbridge import Conferences
from callbridge.sim.queues import Member
from callbridge.sim.replies import Reply, error, listing, success

if TYPE_CHECKING:
    from callbridge.sim.actions import Handler
    from callbridge.sim.simulator import Simulator

AGENT = "agent,all"


def ping(_sim: Simulator, _msg: AmiMessage) -> Reply:
    return success("", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))


def core_settings(_sim: Simulator, _msg: AmiMessage) -> Reply:
    return success("", ("AMIversion", "11.0.0"), ("AsteriskVersion", "22.10.1"), ("SystemName", ""),
                   ("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""),
                   ("CoreRunGroup", ""), ("CoreMaxFilehandles", "0"), ("CoreRealTimeEnabled", "No"),
                   ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No"))


def core_status(sim: Simulator, _msg: AmiMessage) -> Reply:
    started = time.localtime(sim.started_at)
    date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
    return success("", ("CoreStartupDate", date), ("CoreStartupTime", clock), ("CoreReloadDate", date),
                   ("CoreReloadTime", clock), ("CoreCurrentCalls", str(len(sim.world.channels))),
                   ("CoreProcessedCalls", str(sim.world.processed_calls)))


def _duration(sim: Simulator, chan: Channel) -> str:
    secs = int(sim.world.sched.now - chan.created)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def core_show_channels(sim: Simulator, _msg: AmiMessage) -> Reply:
    items = []
    for chan in sim.world.channels.values():
        bridge = chan.bridge
        items.append([("Event", "CoreShowChannel"), *chan.snapshot(), ("Application", chan.app),
                      ("ApplicationData", chan.appdata), ("Duration", _duration(sim, chan)),
                      ("BridgeId", getattr(bridge, "uniqueid", ""))])
    return listing("Channels will follow", items, "CoreShowChannelsComplete")


def bridge_list(sim: Simulator, msg: AmiMessage) -> Reply:
    kind = msg.get("BridgeType")
    items = [[("Event", "BridgeListItem"), *b.headers()] for b in sim.world.bridges.values()
             if not kind or b.type == kind]
    return listing("Bridge listing will follow", items, "BridgeListComplete")


def bridge_info(sim: Simulator, msg: AmiMessage) -> Reply:
    uid = msg.get("BridgeUniqueid")
    if not uid:
        return error("Bridge identifier not provided")
    bridge = sim.world.bridges.get(uid)
    if bridge is None:
        return error(f"Bridge {uid} not found")
    items = [[("Event", "BridgeInfoChannel"), *m.snapshot()] for m in bridge.members]
    return listing("Bridge channel listing will follow", items, "BridgeInfoComplete", *bridge.headers())


# --- queues ---------------------------------------------------------------------------------------


def _member_status(member: Member) -> int:
    return member.status


def queue_status(sim: Simulator, msg: AmiMessage) -> Reply:
    wanted = msg.get("Queue")
    now = sim.world.sched.now
    items: list[list[tuple[str, str]]] = []
    for q in sim.pbx.queues.queues.values():
        if wanted and q.name != wanted:
            continue
        items.append([("Event", "QueueParams"), ("Queue", q.name), ("Max", "0"), ("Strategy", q.strategy),
                      ("Calls", str(len(q.entries))), ("Holdtime", "0"), ("TalkTime", "0"),
                      ("Completed", str(q.completed)), ("Abandoned", str(q.abandoned)), ("ServiceLevel", "0"),
                      ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", "0")])
        for m in q.members:
            items.append([("Event", "QueueMember"), ("Queue", q.name), ("Name", m.name), ("Location", m.interface),
                          ("StateInterface", m.interface), ("Membership", "dynamic"), ("Penalty", str(m.penalty)),
                          ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)), ("LastPause", "0"),
                          ("LoginTime", str(m.login)), ("InCall", "1" if m.in_call else "0"),
                          ("Status", str(_member_status(m))), ("Paused", "1" if m.paused else "0"),
                          ("PausedReason", m.reason), ("Wrapuptime", "0")])
        for pos, e in enumerate(q.entries, 1):
            c = e.chan
            items.append([("Event", "QueueEntry"), ("Queue", q.name), ("Position", str(pos)), ("Channel", c.name),
                          ("Uniqueid", c.uniqueid), ("CallerIDNum", c.cid_num), ("CallerIDName", c.cid_name),
                          ("ConnectedLineNum", c.conn_num), ("ConnectedLineName", c.conn_name),
                          ("Wait", str(int(now - e.joined))), ("Priority", str(e.prio))])
    return listing("Queue status will follow", items, "QueueStatusComplete")


def queue_summary(sim: Simulator, msg: AmiMessage) -> Reply:
    wanted = msg.get("Queue")
    now = sim.world.sched.now
    items = []
    for q in sim.pbx.queues.queues.values():
        if wanted and q.name != wanted:
            continue
        longest = max((int(now - e.joined) for e in q.entries), default=0)
        items.append([("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", str(len(q.members))),
                      ("Available", str(sum(1 for m in q.members if not m.paused and not m.busy))),
                      ("Callers", str(len(q.entries))), ("HoldTime", "0"), ("TalkTime", "0"),
                      ("LongestHoldTime", str(longest))])
    return listing("Queue summary will follow", items, "QueueSummaryComplete")


def queue_add(sim: Simulator, msg: AmiMessage) -> Reply:
    queues = sim.pbx.queues
    q = queues.queues.get(msg.get("Queue"))
    interface = msg.get("Interface")
    if not msg.get("Queue") or not interface:
        return error("'Queue' and 'Interface' not specified.")
    if q is None:
        return error("Unable to add interface to queue: No such queue")
    if q.member(interface) is not None:
        return error("Unable to add interface: Already there")
    penalty = msg.get("Penalty")
    member = Member(interface, msg.get("MemberName") or interface, int(penalty) if penalty.isdigit() else 0,
                    msg.get("Paused").lower() in ("1", "true", "yes"), msg.get("Reason"))
    q.members.append(member)
    sim.world.emit("QueueMemberAdded", AGENT, member.headers(q.name, 1))
    sim.world.sched.soon(lambda: queues.distribute(q))
    return success("Added interface to queue")


def queue_remove(sim: Simulator, msg: AmiMessage) -> Reply:
    q = sim.pbx.queues.queues.get(msg.get("Queue"))
    if q is None:
        return error("Unable to remove interface from queue: No such queue")
    member = q.member(msg.get("Interface"))
    if member is None:
        return error("Unable to remove interface: Not there")
    q.members.remove(member)
    sim.world.emit("QueueMemberRemoved", AGENT, member.headers(q.name, _member_status(member)))
    return success("Removed interface from queue")


def queue_pause(sim: Simulator, msg: AmiMessage) -> Reply:
    interface = msg.get("Interface")
    paused = msg.get("Paused").lower() in ("1", "true", "yes")
    found = False
    queues = sim.pbx.queues
    for q in queues.queues.values():
        if msg.get("Queue") and q.name != msg.get("Queue"):
            continue
        member = q.member(interface)
        if member is None:
            continue
        found = True
        member.paused, member.reason = paused, msg.get("Reason") if paused else ""
        sim.world.emit("QueueMemberPause", AGENT, member.headers(q.name, _member_status(member)))
        if not paused:
            sim.world.sched.soon(functools.partial(queues.distribute, q))
    if not found:
        return error("Interface not found")
    return success("Interface paused successfully" if paused else "Interface unpaused successfully")


def queue_change_priority(sim: Simulator, msg: AmiMessage) -> Reply:
    q = sim.pbx.queues.queues.get(msg.get("Queue"))
    entry = next((e for e in q.entries if e.chan.name == msg.get("Caller")), None) if q else None
    if q is None or entry is None:
        return error("Unable to change priority caller on queue: No such caller")
    prio = msg.get("Priority")
    entry.prio = int(prio) if prio.lstrip("-").isdigit() else 0
    if msg.get("Immediate").lower() in ("1", "yes", "true"):
        # Only with Immediate does the caller move; no event announces the new position (trace 19).
        q.entries.remove(entry)
        entry.original_position = q.insert(entry)
    return success("Priority change for caller on queue")


def queue_withdraw(sim: Simulator, msg: AmiMessage) -> Reply:
    q = sim.pbx.queues.queues.get(msg.get("Queue"))
    entry = next((e for e in q.entries if e.chan.name == msg.get("Caller")), None) if q else None
    if q is None or entry is None:
        return error("Unable to request withdraw from queue: No such caller")
    if entry.withdraw is not None:
        return error("Unable to request withdraw from queue: Already requested")
    sim.pbx.queues.withdraw(q, entry, msg.get("WithdrawInfo"))
    return success("Withdraw requested successfully")


# --- ConfBridge -----------------------------------------------------------------------------------


def confbridge_list_rooms(sim: Simulator, _msg: AmiMessage) -> Reply:
    rooms = sim.pbx.confs.list_rooms()
    if not rooms:
        return error("No active conferences.")
    items = [[("Event", "ConfbridgeListRooms"), *r] for r in rooms]
    return listing("Confbridge conferences will follow", items, "ConfbridgeListRoomsComplete")


def confbridge_list(sim: Simulator, msg: AmiMessage) -> Reply:
    if not msg.get("Conference"):
        return error("No Conference name provided.")
    users = sim.pbx.confs.list_users(msg.get("Conference"))
    if users is None:
        return error("No active conferences.")
    items = [[("Event", "ConfbridgeList"), *u] for u in users]
    return listing("Confbridge user list will follow", items, "ConfbridgeListComplete")


def confbridge_kick(sim: Simulator, msg: AmiMessage) -> Reply:
    confs = sim.pbx.confs
    name, channel = msg.get("Conference"), msg.get("Channel")
    if name not in confs.rooms:
        return error("No Conference by that name found.")
    if not any(u.name == channel or channel == "all" for u in confs.rooms[name].users):
        return error("No Channel by that name found in Conference.")
    sim.world.sched.soon(functools.partial(_kick, confs, name, channel))
    return success("User kicked")


def _kick(confs: Conferences, name: str, channel: str) -> None:
    confs.kick(name, channel)


def _mute(on: bool) -> Handler:
    def handler(sim: Simulator, msg: AmiMessage) -> Reply:
        name = msg.get("Conference")
        if name not in sim.pbx.confs.rooms:
            return error("No Conference by that name found.")
        if not sim.pbx.confs.mute(name, msg.get("Channel"), on):
            return error("No Channel by that name found in Conference.")
        return success("User muted" if on else "User unmuted")

    return handler


def _lock(on: bool) -> Handler:
    def handler(sim: Simulator, msg: AmiMessage) -> Reply:
        room = sim.pbx.confs.rooms.get(msg.get("Conference"))
        if room is None:
            return error("No Conference by that name found.")
        room.locked = on  # locking emits no event (trace 07)
        return success("Conference locked" if on else "Conference unlocked")

    return handler


def command(_sim: Simulator, msg: AmiMessage) -> Reply:
    # The CLI is not simulated: every command "succeeds" with a one-line note, like an empty output.
    cmd = msg.get("Command").strip()
    if cmd == "core show version":
        return success("Command output follows", ("Output", "Asterisk 22.10.1 (callbridge simulator)"))
    return success("Command output follows", ("Output", f"{cmd}: not simulated"))


def list_commands(sim: Simulator, _msg: AmiMessage) -> Reply:
    names = sorted({*sim.handlers, "login", "logoff", "challenge", "events"})
    return success("", *((name, f"{name} (simulated).  (Priv: <none>)") for name in names))


INFO_ACTIONS: dict[str, Handler] = {
    "ping": ping,
    "coresettings": core_settings,
    "corestatus": core_status,
    "coreshowchannels": core_show_channels,
    "bridgelist": bridge_list,
    "bridgeinfo": bridge_info,
    "queuestatus": queue_status,
    "queuesummary": queue_summary,
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    "queuechangeprioritycaller": queue_change_priority,
    "queuewithdrawcaller": queue_withdraw,
    "confbridgelistrooms": confbridge_list_rooms,
    "confbridgelist": confbridge_list,
    "confbridgekick": confbridge_kick,
    "confbridgemute": _mute(True),
    "confbridgeunmute": _mute(False),
    "confbridgelock": _lock(True),
    "confbridgeunlock": _lock(False),
    "command": command,
    "listcommands": list_commands,
}
