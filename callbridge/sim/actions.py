"""Call-control AMI actions: Originate, Redirect, BlindTransfer, Bridge, Hangup, Setvar/Getvar, DTMF.

Each handler gets the simulator and the parsed action and returns a :class:`Reply` (or a
:class:`Deferred` for synchronous Originate). Replies and the events each action causes are those of
the recorded Asterisk 22 traces; the server writes the reply before the events the action caused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from callbridge.ami.framing import AmiMessage
from callbridge.sim.bridges import Bridge
from callbridge.sim.channels import Channel, split_callerid
from callbridge.sim.dial import DialAttempt, LegError, dial_string, make_leg
from callbridge.sim.replies import Deferred, Reply, error, listing, success
from callbridge.sim.transfers import atxfer, cancel_atxfer

if TYPE_CHECKING:
    from callbridge.sim.simulator import Simulator

Handler = Callable[["Simulator", AmiMessage], "Reply | Deferred"]
CALL = "call,all"
#: OriginateResponse Reason of a failed Originate by DIALSTATUS. Asterisk 22 with chan_pjsip answers a busy
#: leg (486) with Reason 0, not 5 (issue 15: Reason 0, then DialEnd BUSY, Hangup Cause 17).
_REASON = {"BUSY": "0", "CONGESTION": "8"}


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "yes", "true", "on", "y")


def originate(sim: Simulator, msg: AmiMessage) -> Reply | Deferred:
    target = msg.get("Channel")
    if not target:
        return error("Channel not specified")
    if not msg.get("Application") and not (msg.get("Context") and msg.get("Exten")):
        return error("Exten not specified") if msg.get("Context") else error("Context not specified")
    request = _Originate(sim, msg, target)
    sim.world.sched.soon(request.start)
    if _truthy(msg.get("Async")):
        return success("Originate successfully queued")
    return request.deferred


class _Originate:
    """One accepted Originate: its leg is dialled on the scheduler, its OriginateResponse (and the deferred
    reply of a synchronous Originate) tells how the leg ended."""

    def __init__(self, sim: Simulator, msg: AmiMessage, target: str) -> None:
        self.pbx, self.world, self.target = sim.pbx, sim.world, target
        self.app, self.data = msg.get("Application"), msg.get("Data")
        self.context, self.exten, self.priority = msg.get("Context"), msg.get("Exten"), msg.get("Priority", "1")
        self.cid = split_callerid(msg.get("CallerID")) if msg.get("CallerID") else None
        self.chan_id = msg.get("ChannelId")
        self.other_id = msg.get("OtherChannelId") or (self.chan_id + ";2" if self.chan_id else "")
        self.timeout = float(msg.get("Timeout") or 30000) / 1000.0
        self.variables = [v for raw in msg.get_all("Variable") for v in raw.split(",") if "=" in v]
        self.action_id = msg.get("ActionID")
        self.deferred = Deferred()

    def respond(self, ok: bool, reason: str, channel: str, uniqueid: str) -> None:
        cid = self.cid
        where = ([("Application", self.app), ("Data", self.data)] if self.app
                 else [("Context", self.context), ("Exten", self.exten)])  # fmt: skip
        self.world.emit("OriginateResponse", CALL, [
            *([("ActionID", self.action_id)] if self.action_id else []), ("Response", "Success" if ok else "Failure"),
            ("Channel", channel), *where, ("Reason", reason), ("Uniqueid", uniqueid or "<null>"),
            ("CallerIDNum", cid[0] if cid else "<unknown>"), ("CallerIDName", cid[1] if cid else "<unknown>")])
        self.deferred.resolve(success("Originate successfully queued") if ok else error("Originate failed"))

    def start(self) -> None:
        try:
            leg = make_leg(self.pbx, self.target, caller=None, cid=self.cid, uniqueid=self.chan_id,
                           otherid=self.other_id)  # fmt: skip
        except LegError:
            self.respond(False, "0", self.target, self.chan_id)
            return
        for pair in self.variables:
            name, _, value = pair.partition("=")
            self.pbx.assign(leg, name.strip(), value)
        if self.variables and leg.partner is not None:
            self.world.inherit_vars(leg, leg.partner)  # _VAR/__VAR cross to the Local ;2 half
        attempt = DialAttempt(self.pbx, None, self.done)
        attempt.add(leg, dial_string(self.target))
        attempt.arm_timeout(self.timeout, functools.partial(self.expire, attempt, leg))

    def done(self, status: str, answered: Channel | None) -> None:
        if answered is None:
            self.respond(False, _REASON.get(status, "0"), self.target, self.chan_id)
            return
        self.respond(True, "4", answered.name, answered.uniqueid)
        if self.app:
            self.run_app(answered, self.app)
        else:
            self.pbx.goto(answered, self.context, self.exten, int(self.priority) if self.priority.isdigit() else 1)

    def run_app(self, answered: Channel, app: str) -> None:
        world = self.world
        answered.app, answered.appdata = app, self.data
        runner = self.pbx.apps.get(app.lower())
        outcome = runner(self.pbx, answered, self.data) if runner is not None else None
        # The originated channel hangs up when its application returns (unless it blocks).
        if isinstance(outcome, float):
            world.sched.call_later(outcome, lambda: world.hangup(answered, 16, request="soft"))
        elif outcome is None:
            world.sched.soon(lambda: world.hangup(answered, 16, request="soft"))

    def expire(self, attempt: DialAttempt, leg: Channel) -> None:
        # Originate's own timeout (not app_dial's): no DialEnd, PJSIP reports 480 (trace 16c).
        if attempt.finished:
            return
        attempt.finished = True
        leg.waiter = None
        self.world.hangup(leg, 19, tech_cause=480 if leg.tech == "PJSIP" else 0)
        self.respond(False, "3", self.target, self.chan_id)


#: how long Asterisk takes to move a redirected channel (async goto out of its bridge), seen on the live PBX
REDIRECT_DELAY_S = 0.05


def _channel(sim: Simulator, msg: AmiMessage, header: str = "Channel") -> Channel | None:
    return sim.world.find(msg.get(header))


def redirect(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = _channel(sim, msg)
    if chan is None:
        return error("Channel specified does not exist")
    extra = _channel(sim, msg, "ExtraChannel") if msg.get("ExtraChannel") else None
    if msg.get("ExtraChannel") and extra is None:
        return error("ExtraChannel does not exist")
    pbx, world = sim.pbx, sim.world
    moves = [(chan, msg.get("Context"), msg.get("Exten"), msg.get("Priority", "1"))]
    if extra is not None:
        moves.append((extra, msg.get("ExtraContext") or msg.get("Context"), msg.get("ExtraExten") or msg.get("Exten"),
                      msg.get("ExtraPriority") or msg.get("Priority", "1")))
    for c, ctx, _ex, _pr in moves:
        if not pbx.dialplan.find(ctx or c.context, _ex or c.exten):
            return error("Extension does not exist.")
    if extra is not None and chan.bridge is not None and chan.bridge is extra.bridge:
        world.dissolve(chan.bridge)  # type: ignore[arg-type]
    for c, ctx, ex, pr in moves:
        pbx.detach(c)
        pbx.goto(c, ctx or c.context, ex or c.exten, int(pr) if pr.isdigit() else 1, run=False)
        # Asterisk answers at once and moves the channel asynchronously (it leaves its bridge thread, then
        # its PBX restarts at the new place): what the caller does there comes after the reply and after
        # the actions the client sends right after it (live PBX: a three-way leg's Originate goes out
        # before the caller's ConfbridgeJoin).
        gen = c.run_gen
        world.sched.call_later(REDIRECT_DELAY_S, functools.partial(pbx.execute, c, gen))
    return success("Dual Redirect successful" if extra is not None else "Redirect successful")


def blind_transfer(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = _channel(sim, msg)
    if chan is None:
        return error("No such channel")
    pbx, world = sim.pbx, sim.world
    bridge = chan.bridge
    context, exten = msg.get("Context") or chan.context, msg.get("Exten")
    if bridge is None or not hasattr(bridge, "members"):
        return error("Transfer failed")
    assert isinstance(bridge, Bridge)
    peers = bridge.peers_of(chan)
    world.chan_event("Unhold", chan)
    transferee = peers[0] if peers else None
    world.emit("BlindTransfer", CALL, [
        ("Result", "Success"), *chan.snapshot("Transferer"),
        *(transferee.snapshot("Transferee") if transferee is not None else []), *bridge.headers(),
        ("IsExternal", "Yes"), ("Context", context), ("Extension", exten)])
    world.dissolve(bridge)
    for peer in peers:
        peer.waiter = None
        pbx.goto(peer, context, exten, 1)
    world.hangup(chan, 16)
    return success("Transfer succeeded")


def bridge_action(sim: Simulator, msg: AmiMessage) -> Reply:
    a, b = _channel(sim, msg, "Channel1"), _channel(sim, msg, "Channel2")
    if a is None or b is None:
        return error(f"Channel1 does not exist: {msg.get('Channel1')}" if a is None else
                     f"Channel2 does not exist: {msg.get('Channel2')}")
    pbx, world = sim.pbx, sim.world

    def after(c: Channel) -> None:
        # After an AMI Bridge the channel goes back to where it was in the dialplan (trace 02).
        pbx.goto(c, c.context, c.exten, c.priority)

    def start() -> None:
        for c in (a, b):
            pbx.detach(c)
            c.run_gen += 1
        world.bridge_two(a, b, after, after)
        world.set_connected(b, a.cid_num, a.cid_name)
        world.set_connected(a, b.cid_num, b.cid_name)

    world.sched.soon(start)
    return success("Channels have been bridged")


def hangup(sim: Simulator, msg: AmiMessage) -> Reply:
    name = msg.get("Channel")
    cause_text = msg.get("Cause")
    cause = int(cause_text) if cause_text.isdigit() else 16
    world = sim.world
    if len(name) > 1 and name.startswith("/") and name.endswith("/"):
        try:
            names = world.hangup_matching(name[1:-1], sim.pbx.confs.hidden_channels())
        except re.error:
            return error("Invalid regex")
        items = [[("Event", "ChannelHungup"), ("Channel", n)] for n in names]
        return listing("Channels hung up will follow", items, "ChannelsHungupListComplete")
    chan = world.find(name)
    if chan is None:
        return error("No such channel")
    world.sched.soon(lambda: world.hangup(chan, cause))
    return success("Channel Hungup")


def _variable_of(sim: Simulator, msg: AmiMessage, no_channel: str) -> tuple[str, Channel | None, Reply | None]:
    """Setvar/Getvar's Variable and the channel it is on (None: a global), or the error reply (Asterisk
    words a missing channel differently for each: ``no_channel``)."""
    name = msg.get("Variable")
    if not name:
        return name, None, error("No variable specified")
    chan = _channel(sim, msg) if msg.get("Channel") else None
    if msg.get("Channel") and chan is None:
        return name, None, error(no_channel)
    return name, chan, None


def setvar(sim: Simulator, msg: AmiMessage) -> Reply:
    name, chan, refused = _variable_of(sim, msg, "Channel not found")
    if refused is not None:
        return refused
    sim.pbx.assign(chan, name, msg.get("Value"))
    return success("Variable Set")


def getvar(sim: Simulator, msg: AmiMessage) -> Reply:
    name, chan, refused = _variable_of(sim, msg, "No such channel")
    if refused is not None:
        return refused
    return success("", ("Variable", name), ("Value", sim.pbx.lookup(chan, name)))


def play_dtmf(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = _channel(sim, msg)
    if chan is None:
        return error("Channel not found")
    digit = msg.get("Digit")
    if not digit:
        return error("No digit specified")
    if _truthy(msg.get("Receive")):
        # Receive=yes emulates the far end pressing the key: one DTMFEnd, no DTMFBegin (trace 18).
        duration = msg.get("Duration") or "0"
        sim.pbx.dtmf.end(chan, digit[0], int(duration) if duration.isdigit() else 0, had_begin=False)
    return success("DTMF successfully queued")


def user_event(sim: Simulator, msg: AmiMessage) -> Reply:
    name = msg.get("UserEvent")
    if not name:
        return error("No UserEvent specified")
    extra = [(k, v) for k, v in msg.headers if k not in ("Action", "ActionID", "UserEvent")]
    sim.world.emit("UserEvent", "user,all", [("UserEvent", name), *extra])
    return success("Event Sent")


def atxfer_action(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = _channel(sim, msg)
    if chan is None:
        return error("Channel specified does not exist")
    problem = atxfer(sim.pbx, chan, msg.get("Context") or chan.context, msg.get("Exten"))
    return error(problem) if problem else success("Atxfer successfully queued")


def cancel_atxfer_action(sim: Simulator, msg: AmiMessage) -> Reply:
    chan = _channel(sim, msg)
    if chan is None:
        return error("Channel specified does not exist")
    problem = cancel_atxfer(sim.pbx, chan)
    return error(problem) if problem else success("CancelAtxfer successfully queued")


CALL_ACTIONS: dict[str, Handler] = {
    "originate": originate,
    "redirect": redirect,
    "blindtransfer": blind_transfer,
    "bridge": bridge_action,
    "hangup": hangup,
    "setvar": setvar,
    "getvar": getvar,
    "playdtmf": play_dtmf,
    "userevent": user_event,
    "atxfer": atxfer_action,
    "cancelatxfer": cancel_atxfer_action,
}
