"""Three-way hand-over (三方通话): caller and sending agent into a ConfBridge room, destination called in.

Built on the rendered ``cb-conf`` context (the room name is the extension, ``cb-<transfer id>``):

1. hand-over variables on the caller, then ``Redirect`` caller + ``ExtraChannel`` agent into the room;
2. ``Originate`` the destination's line into the same room, presenting the caller's number and carrying
   the ``CB_*`` variables; ``ChannelId`` names the new leg so its events and a failed
   ``OriginateResponse`` are matched without ActionIDs; a failed line tries the next (backup) line;
3. when the destination joins, the sending agent leaves by ``ConfbridgeKick`` (rule ``agent_leaves``
   or a ``leave`` command) or stays.
"""

from __future__ import annotations

from callbridge.ami.actions import Action, ConfbridgeKick, Originate, Redirect
from callbridge.engine.transfer import ENTRY_EXTEN, Transfer, handover_vars, setvars

CONF_CONTEXT = "cb-conf"

#: OriginateResponse ``Reason`` codes (Asterisk AST_CONTROL_*) → failure reason.
ORIGINATE_REASONS = {0: "unreachable", 1: "hangup", 3: "noanswer", 5: "busy", 8: "congestion"}


def room_name(transfer_id: str) -> str:
    return f"cb-{transfer_id}"


def enter_room(t: Transfer) -> tuple[Action, ...]:
    return (
        *setvars(t.caller_channel, t),
        Redirect(channel=t.caller_channel, context=CONF_CONTEXT, exten=t.room, extra_channel=t.agent_channel),
    )


def destination_lines(t: Transfer) -> tuple[str, ...]:
    """The trunk's lines; a hotline served locally is reached through its rendered transfer context."""
    return t.lines or (f"Local/{ENTRY_EXTEN}@cb-to-{t.to_hotline}",)


def leg_id(t: Transfer, index: int) -> str:
    return f"{t.id}-leg{index}"


def call_in(t: Transfer, index: int) -> Originate:
    lines = destination_lines(t)
    return Originate(
        channel=lines[index],
        context=CONF_CONTEXT,
        exten=t.room,
        priority=1,
        caller_num=t.caller_num if t.rule.carry_number else t.from_hotline,
        variables=tuple(handover_vars(t)),
        timeout_ms=t.rule.answer_timeout * 1000,
        channel_id=leg_id(t, index),
    )


def leave_room(t: Transfer) -> tuple[Action, ...]:
    return (ConfbridgeKick(conference=t.room, channel=t.agent_channel),)


def originate_reason(code: int) -> str:
    return ORIGINATE_REASONS.get(code, "failed")
