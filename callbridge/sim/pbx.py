"""The dialplan interpreter: runs channels through the parsed extensions.conf subset.

Each channel runs step by step inside the single scheduler (no task per channel). An application
returns what the channel does next: go on (``None``), wait ``float`` seconds, ``BLOCK`` until someone
(a Dial, a queue, a bridge) moves it on, or ``JUMP`` when it moved its own position (Goto).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from callbridge.sim.channels import UP, Channel, split_callerid
from callbridge.sim.confbridge import Conferences
from callbridge.sim.dial import DialAttempt, LegError, dial_string, make_leg
from callbridge.sim.dialplan import Dialplan, Step, expand, parse_gotoif, split_args
from callbridge.sim.dtmf import DtmfRelay
from callbridge.sim.endpoints import Endpoints
from callbridge.sim.outcomes import BLOCK, JUMP, Outcome
from callbridge.sim.queues import Queues
from callbridge.sim.transfers import Consultation
from callbridge.sim.world import DIALPLAN, World

log = structlog.get_logger("callbridge.sim.pbx")

App = Callable[["Pbx", Channel, str], Outcome]

MAX_STEPS = 500  # a dialplan loop without waits would otherwise hang the simulator


class Pbx:
    def __init__(self, world: World, dialplan: Dialplan, endpoints: Endpoints) -> None:
        self.world = world
        self.dialplan = dialplan
        self.endpoints = endpoints
        world.pbx = self
        world.global_vars.update(dialplan.globals)
        self.queues = Queues(self)
        self.confs = Conferences(self)
        self._gone: dict[str, list[Callable[[Channel], None]]] = {}
        world.hangup_hooks.append(self._channel_gone)
        self.apps: dict[str, App] = dict(APPS)
        self.consultations: dict[str, Consultation] = {}
        self.dtmf = DtmfRelay(world)
        #: endpoint -> what plays its far end instead of its behaviour (another PBX: sim/trunk_link.py)
        self.far_ends: dict[str, Callable[[Channel], None]] = {}

    # --- lifecycle hooks ------------------------------------------------------------------------
    def on_channel_gone(self, chan: Channel, fn: Callable[[Channel], None]) -> None:
        self._gone.setdefault(chan.name, []).append(fn)

    def _channel_gone(self, chan: Channel) -> None:
        for fn in self._gone.pop(chan.name, []):
            fn(chan)

    # --- running --------------------------------------------------------------------------------
    def start(self, chan: Channel) -> None:
        """Run ``chan`` from its current position (after everything already due now)."""
        gen = chan.run_gen
        self.world.sched.soon(lambda: self.execute(chan, gen))

    def goto(self, chan: Channel, context: str, exten: str, priority: int = 1, *, run: bool = True) -> None:
        chan.context, chan.exten, chan.priority = context, exten, priority
        chan.run_gen += 1
        chan.waiter = None
        if run:
            self.start(chan)

    def detach(self, chan: Channel) -> None:
        """Take a channel away from what it is doing (Dial, queue, conference, bridge) without hanging up."""
        waiter = chan.waiter
        chan.waiter = None
        detach = getattr(waiter, "detach", None)
        if callable(detach):
            detach(chan)
        if chan.bridge is not None:
            self.world.leave(chan, dissolve=True)
        chan.run_gen += 1

    def resume(self, chan: Channel, gen: int, *, advance: bool = True) -> None:
        """Continue after a waiting or blocking application (ignored when the channel moved on)."""
        if chan.hungup or chan.run_gen != gen:
            return
        chan.waiter = None
        if advance:
            chan.priority += 1
        self.execute(chan, gen)

    def execute(self, chan: Channel, gen: int) -> None:
        world = self.world
        for _ in range(MAX_STEPS):
            if chan.hungup or chan.run_gen != gen:
                return
            step = self.step_at(chan)
            if step is None:
                # Dialplan ran out: Asterisk hangs the channel up ("dialplan ended" soft hang-up).
                world.hangup(chan, int(chan.vars.get("HANGUPCAUSE", "16") or 16), request="soft")
                return
            data = self.announce(chan, step)
            chan.app, chan.appdata = step.app, data
            app = self.apps.get(step.app.lower())
            if app is None:
                # Asterisk: "No application 'X' for extension" — the channel is hung up.
                log.warning("sim.unknown_application", app=step.app, context=chan.context, exten=chan.exten)
                world.hangup(chan, 16, request="soft")
                return
            outcome = app(self, chan, data)
            if chan.hungup or chan.run_gen != gen:
                return
            if outcome is None:
                chan.priority += 1
                continue
            if outcome == JUMP:
                continue
            if outcome == BLOCK:
                return
            if isinstance(outcome, float):
                world.sched.call_later(outcome, lambda: self.resume(chan, gen))
                return
        world.hangup(chan, 16, request="soft")

    def step_at(self, chan: Channel) -> Step | None:
        """The dialplan step at ``chan``'s position; None when its extension has no such priority."""
        ext = self.dialplan.find(chan.context, chan.exten)
        return ext.steps.get(chan.priority) if ext is not None else None

    def announce(self, chan: Channel, step: Step) -> str:
        """``step``'s data expanded on ``chan``, and the ``Newexten`` Asterisk publishes before running it."""
        data = expand(step.data, lambda name: self.lookup(chan, name))
        self.world.chan_event(
            "Newexten", chan, [("Extension", chan.exten), ("Application", step.app), ("AppData", data)], DIALPLAN
        )
        return data

    # --- variables ------------------------------------------------------------------------------
    def lookup(self, chan: Channel | None, name: str) -> str:
        upper = name.upper()
        if chan is not None:
            value = _channel_value(chan, name, upper)
            if value is not None:
                return value
        if upper == "EPOCH":
            return str(int(time.time()))
        if upper.startswith("GLOBAL("):
            return self.world.global_vars.get(name[7:-1], "")
        return self.world.global_vars.get(name, "")

    def assign(self, chan: Channel | None, name: str, value: str) -> None:
        """``Set()``/``Setvar``: CALLERID()/CONNECTEDLINE() update the party, GLOBAL() the globals."""
        upper = name.upper()
        world = self.world
        if upper.startswith("GLOBAL("):
            world.global_vars[name[7:-1]] = value
            return
        if chan is None:
            world.global_vars[name] = value
            return
        if upper.startswith(("CALLERID(", "CONNECTEDLINE(")):
            # the ``i`` option (set without sending an update) changes nothing here: the simulator
            # sends no party-id updates of its own
            field = upper[upper.index("(") + 1 : -1].partition(",")[0].strip()
            connected = upper.startswith("CONNECTEDLINE")
            num, nm = (chan.conn_num, chan.conn_name) if connected else (chan.cid_num, chan.cid_name)
            if field == "NUM":
                num = value
            elif field == "NAME":
                nm = value
            else:
                num, nm = split_callerid(value)
            (world.set_connected if connected else world.set_callerid)(chan, num, nm)
            return
        world.set_var(chan, name, value)


def _channel_value(chan: Channel, name: str, upper: str) -> str | None:
    """What ``${name}`` reads on ``chan`` itself (its caller or connected id, EXTEN…, its variables); None
    when the channel has no such value (then globals decide)."""
    if upper.startswith(("CALLERID(", "CONNECTEDLINE(")):
        return _party_id(chan, upper)
    special = {
        "EXTEN": chan.exten,
        "CONTEXT": chan.context,
        "PRIORITY": str(chan.priority),
        "CHANNEL": chan.name,
        "UNIQUEID": chan.uniqueid,
    }
    if upper in special:
        return special[upper]
    return chan.vars.get(name)


def _party_id(chan: Channel, upper: str) -> str:
    """``CALLERID(num|name|all)`` / ``CONNECTEDLINE(…)``: ``<unknown>`` reads as empty."""
    field = upper[upper.index("(") + 1 : -1]
    num, nm = (chan.cid_num, chan.cid_name) if upper.startswith("C" + "ALLERID") else (chan.conn_num, chan.conn_name)
    num = "" if num == "<unknown>" else num
    nm = "" if nm == "<unknown>" else nm
    if field == "NUM":
        return num
    if field == "NAME":
        return nm
    return f'"{nm}" <{num}>' if nm else num


# --- applications -------------------------------------------------------------------------------


def _answer(pbx: Pbx, chan: Channel, _data: str) -> Outcome:
    pbx.world.answer(chan)
    return None


def _wait(_pbx: Pbx, _chan: Channel, data: str) -> Outcome:
    try:
        return max(0.0, float(data or 0))
    except ValueError:
        return 0.0


def _noop(_pbx: Pbx, _chan: Channel, _data: str) -> Outcome:
    return None


def _set(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    name, _, value = data.partition("=")
    pbx.assign(chan, name.strip(), value)
    return None


def _ringing(pbx: Pbx, chan: Channel, _data: str) -> Outcome:
    pbx.world.ringing(chan)
    return None


def _moh(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    args = split_args(data)
    klass = args[0] or "default"
    world = pbx.world
    world.chan_event("MusicOnHoldStart", chan, [("Class", klass)])
    gen = chan.run_gen

    def stop() -> None:
        if not chan.hungup and chan.run_gen == gen:
            world.chan_event("MusicOnHoldStop", chan)
            pbx.resume(chan, gen)

    if len(args) > 1 and args[1]:
        world.sched.call_later(float(args[1]), stop)
    return BLOCK


def _block(_pbx: Pbx, _chan: Channel, _data: str) -> Outcome:
    return BLOCK


def _user_event(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    args = split_args(data)
    extra = [("UserEvent", args[0])]
    for pair in args[1:]:
        key, _, value = pair.partition(":")
        if key.strip():
            extra.append((key.strip(), value.strip()))
    pbx.world.chan_event("UserEvent", chan, extra, "user,all")
    return None


def _goto(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    jump_to(pbx, chan, data)
    return JUMP


def jump_to(pbx: Pbx, chan: Channel, target: str) -> None:
    """Goto semantics: ``[[context,]exten,]priority|label``."""
    parts = [p.strip() for p in split_args(target)]
    context, exten = chan.context, chan.exten
    if len(parts) == 3:
        context, exten, prio_text = parts
    elif len(parts) == 2:
        exten, prio_text = parts
    else:
        prio_text = parts[0]
    ext = pbx.dialplan.find(context, exten)
    if prio_text.isdigit():
        priority = int(prio_text)
    elif ext is not None and prio_text in ext.labels:
        priority = ext.labels[prio_text]
    else:
        priority = 1
    chan.context, chan.exten, chan.priority = context, exten, priority


def _gotoif(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    cond, iftrue, iffalse = parse_gotoif(data)
    branch = iftrue if cond not in ("", "0") else iffalse
    if not branch:
        return None
    jump_to(pbx, chan, branch)
    return JUMP


def _hangup(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    cause = int(data) if data.strip().isdigit() else int(chan.vars.get("HANGUPCAUSE", "16") or 16)
    pbx.world.hangup(chan, cause, request="soft")
    return BLOCK


def _dial(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    args = split_args(data)
    targets = [t for t in args[0].split("&") if t.strip()]
    timeout = float(args[1]) if len(args) > 1 and args[1].strip() else 0.0
    gen = chan.run_gen
    world = pbx.world
    world.set_var(chan, "DIALSTATUS", "")

    def done(status: str, leg: Channel | None) -> None:
        if leg is None:
            pbx.resume(chan, gen)
            return
        # Answered: the caller is answered too, then caller and callee share a basic bridge; when it
        # ends both hang up (Dial returns -1 without the g option).
        world.answer(chan)
        leg.exten = ""  # Asterisk clears the dialed leg's exten once it is bridged (traces 03, 04)
        world.bridge_two(
            leg,
            chan,
            lambda c: world.hangup(c, 16),
            lambda c: world.hangup(c, 16, request="soft"),
        )

    attempt = DialAttempt(pbx, chan, done)
    chan.waiter = attempt
    failures: list[int] = []
    for target in targets:
        try:
            leg = make_leg(pbx, target.strip(), caller=chan)
        except LegError as exc:
            failures.append(exc.cause)
            continue
        attempt.add(leg, dial_string(target))
    if not attempt.legs:
        world.set_var(chan, "DIALSTATUS", "CHANUNAVAIL" if 34 not in failures else "CONGESTION")
        chan.waiter = None
        return None
    attempt.arm_timeout(timeout)
    if chan.state != UP:
        pass  # early media is not modelled; the caller is answered by the bridge
    return BLOCK


def _queue(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    return pbx.queues.app_queue(chan, data)


def _confbridge(pbx: Pbx, chan: Channel, data: str) -> Outcome:
    return pbx.confs.app_confbridge(chan, data)


def _playback(_pbx: Pbx, _chan: Channel, _data: str) -> Outcome:
    return None


APPS: dict[str, App] = {
    "answer": _answer,
    "wait": _wait,
    "noop": _noop,
    "set": _set,
    "ringing": _ringing,
    "musiconhold": _moh,
    "echo": _block,
    "userevent": _user_event,
    "goto": _goto,
    "gotoif": _gotoif,
    "hangup": _hangup,
    "dial": _dial,
    "queue": _queue,
    "confbridge": _confbridge,
    "playback": _playback,
}
