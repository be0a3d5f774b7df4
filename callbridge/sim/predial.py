"""A pre-dial handler (Queue's ``b(context^exten^priority)``) run on a new outbound channel.

Asterisk runs the handler as a Gosub on the callee's channel after app_queue copied the caller's party
ids onto it and before it is called (``ast_pre_call`` in ``ring_entry``), so what the handler sets (its
connected line, variables) is what the INVITE and ``DialBegin`` carry. The simulator runs it at once, up
to its ``Return``, with the applications that do not wait (``NoOp``, ``Set``, ``GotoIf``, ``Goto``,
``UserEvent``); any other application ends it with a warning, as the rendered dialplan never needs one.

What the simulator does not do: forward the queue caller's connected-line updates to ringing members
(Asterisk's app_queue does, through a member's ``CONNECTED_LINE_SEND_SUB``), so an interception routine
a handler installs never runs here; tests/live/test_live_attended.py holds that part on Asterisk.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import structlog

from callbridge.sim.channels import Channel
from callbridge.sim.outcomes import JUMP

if TYPE_CHECKING:
    from callbridge.sim.pbx import Pbx

log = structlog.get_logger(__name__)

#: Applications a pre-dial handler may run in the simulator (none of them waits).
PREDIAL_APPS = frozenset({"noop", "set", "gotoif", "goto", "userevent"})
#: Steps one handler may take before the simulator gives up on it (a Goto loop).
MAX_PREDIAL_STEPS = 64

_CALLEE_GOSUB = re.compile(r"b\(([^)]*)\)")


def callee_predial(options: str) -> tuple[str, str, int] | None:
    """The ``b(context^exten^priority)`` of a Queue/Dial options string; None without one."""
    found = _CALLEE_GOSUB.search(options)
    if found is None:
        return None
    parts = [p.strip() for p in found.group(1).split("^")]
    if len(parts) != 3 or not parts[2].isdigit():
        log.warning("sim.predial_unsupported", options=options)
        return None
    return parts[0], parts[1], int(parts[2])


def run_predial(pbx: Pbx, chan: Channel, location: tuple[str, str, int]) -> None:
    """Run the handler at *location* on *chan* up to its ``Return``; *chan*'s position is kept."""
    saved = chan.context, chan.exten, chan.priority
    chan.context, chan.exten, chan.priority = location
    try:
        for _ in range(MAX_PREDIAL_STEPS):
            step = pbx.step_at(chan)
            app = step.app.lower() if step is not None else ""
            if step is None or app == "return":
                return
            if app not in PREDIAL_APPS:
                log.warning("sim.predial_application", app=step.app, context=chan.context, exten=chan.exten)
                return
            data = pbx.announce(chan, step)  # the channel's app stays: Asterisk shows the call, not the Gosub
            if pbx.apps[app](pbx, chan, data) != JUMP:
                chan.priority += 1
        log.warning("sim.predial_loop", context=location[0], exten=location[1])
    finally:
        chan.context, chan.exten, chan.priority = saved
