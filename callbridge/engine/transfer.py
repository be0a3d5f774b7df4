"""A transfer as data: its record, the state machine (a transition table) and the AMI actions it needs.

Every state change goes through :func:`move`, which checks the table and logs the transition, so the
log of one transfer reads like its history. A transfer holds a reference to the rule it started with:
a hot reload never changes a call in progress.

States::

    requested → sending → routing → ringing → answered → completed
                  │          │         │  ↘ (line failed) → ringing (backup line) …
                  │          │         └──→ returned (back to the sending agent) / failed
                  └→ unknown (AMI outcome unknown; reconciled after the resync, never re-sent)

Attended transfers pass ``consulting`` (caller on hold, agent talks to the destination); three-way
transfers pass ``conference``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import structlog

from callbridge.ami.actions import Action, Atxfer, CancelAtxfer, Hangup, Redirect, Setvar
from callbridge.ami.event_types import ChannelSnapshot
from callbridge.ami.framing import check_header
from callbridge.calls.model import Channel
from callbridge.dialplan.model import TransferRule
from callbridge.domain import DomainEvent

log = structlog.get_logger("callbridge.engine.transfer")

E = TypeVar("E", bound=DomainEvent)

#: The extension every rendered ``cb-*`` context starts at (Redirect, Originate).
ENTRY_EXTEN = "s"


def atxfer_exten(t: Transfer) -> str:
    """The extension an Atxfer dials: the destination hotline's number, which every rendered
    ``cb-to-<n>`` / ``cb-expert-<n>`` context has beside ``s``. Asterisk "dials" Atxfer's Exten as DTMF
    digits into the agent's channel, so ``s`` dials nothing: the feature would wait for the target on
    the agent's keypad and give up."""
    return t.to_hotline


class TState(StrEnum):
    REQUESTED = "requested"
    SENDING = "sending"  # actions written, waiting for their replies
    UNKNOWN = "unknown"  # the AMI connection dropped before the reply: wait for the resync
    ROUTING = "routing"  # the caller runs the rendered cb-to-/cb-expert- context
    CONSULTING = "consulting"  # attended: the agent consults the destination, caller on hold
    CONFERENCE = "conference"  # three-way: caller + agent in the room, destination being called in
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    RETURNED = "returned"
    FAILED = "failed"


S = TState
TERMINAL = frozenset({S.COMPLETED, S.RETURNED, S.FAILED})
_ANY_END = frozenset({S.RETURNED, S.FAILED})  # completed only after an answer

TRANSITIONS: dict[TState, frozenset[TState]] = {
    S.REQUESTED: frozenset({S.SENDING, S.FAILED}),
    S.SENDING: frozenset({S.ROUTING, S.CONSULTING, S.CONFERENCE, S.UNKNOWN, S.RINGING, S.ANSWERED}) | _ANY_END,
    S.UNKNOWN: frozenset({S.ROUTING, S.CONSULTING, S.CONFERENCE, S.RINGING, S.ANSWERED}) | _ANY_END,
    S.ROUTING: frozenset({S.RINGING, S.ANSWERED}) | _ANY_END,
    S.CONSULTING: frozenset({S.RINGING, S.ANSWERED}) | _ANY_END,
    S.CONFERENCE: frozenset({S.RINGING, S.ANSWERED}) | _ANY_END,
    S.RINGING: frozenset({S.RINGING, S.ANSWERED, S.ROUTING}) | _ANY_END,
    S.ANSWERED: frozenset({S.COMPLETED, S.RETURNED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.RETURNED: frozenset(),
    S.FAILED: frozenset(),
}


class IllegalTransition(Exception):
    pass


@dataclass(slots=True)
class Transfer:
    id: str
    call_id: str
    rule: TransferRule  # the rule it started with (kept across reloads)
    mode: str  # blind | attended | threeway
    from_hotline: str
    to_hotline: str
    agent: str  # sending agent: the endpoint name (``agent1001``), as every event and record names it
    agent_channel: str
    caller_channel: str
    caller_num: str
    category: str = ""
    ticket: str = ""
    summary: str = ""
    source: str = "command"  # dtmf | command
    context: str = ""  # cb-to-<hotline> | cb-expert-<hotline>
    lines: tuple[str, ...] = ()  # the destination's lines, primary first
    priority: int | None = None  # expert queue priority
    verify: bool = False  # the destination trunk wants the presented number checked
    idempotency_key: str | None = None
    agent_interface: str = ""  # the sending agent's dialable interface (PJSIP/agent1001): where cb-back rings
    handover_timeout: float = 0.0  # three-way: max seconds of the hand-over (engine option, kept across reloads)
    state: TState = S.REQUESTED
    created: float = 0.0
    line: str = ""  # line (dial string / queue) being tried now
    route_channel: str = ""  # the channel running cb-to-/cb-expert- (the caller, or an Atxfer Local half)
    dest_channel: str = ""  # the destination leg
    last_failure: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)  # (line, reason)
    number_checked: bool = False
    room: str = ""  # three-way conference room
    originate_index: int = 0  # three-way: which line the current Originate dials
    leg_causes: dict[int, int] = field(default_factory=dict)  # three-way: Hangup cause of each failed leg
    pending_leg: int | None = None  # three-way: leg whose Originate failed without reason, Hangup awaited
    rang: bool | None = None  # the current line's leg rang (DialState); False: seen dialled, never rang; None: unseen
    agent_left: bool = False
    caller_gone: bool = False
    dest_gone: bool = False
    history: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def payload(self) -> dict[str, Any]:
        """The hand-over payload every transfer event carries."""
        return {
            "call_id": self.call_id,
            "hotline": self.from_hotline,
            "transfer_id": self.id,
            "from_hotline": self.from_hotline,
            "to_hotline": self.to_hotline,
            "caller_num": self.caller_num,
            "agent": self.agent,
            "category": self.category,
            "ticket": self.ticket,
            "summary": self.summary,
            "mode": self.mode,
            "line": self.line,
        }

    def event(self, cls: type[E], now: float, **extra: Any) -> E:
        made: E = cls(ts=now, **{**self.payload(), **extra})
        return made

    def describe(self) -> dict[str, Any]:
        return {**self.payload(), "state": self.state.value, "rule": self.rule.id, "room": self.room,
                "failures": [list(f) for f in self.failures]}  # fmt: skip


#: The log event of every state change (see :func:`move`).
TRANSITION_EVENT = "transfer.transition"


def move(t: Transfer, new: TState, now: float, reason: str = "") -> None:
    """The one place a transfer changes state: checked against :data:`TRANSITIONS` and logged."""
    log.info(TRANSITION_EVENT, **transition(t, new, now, reason))


def transition(t: Transfer, new: TState, now: float, reason: str = "") -> dict[str, Any]:
    """:func:`move` without the log line, whose fields it returns: for the one caller that has the line
    written later (the start of a transfer, where rendering it would delay the first AMI action)."""
    old = t.state
    if new not in TRANSITIONS[old]:
        log.error("transfer.illegal_transition", transfer_id=t.id, old=old.value, new=new.value, reason=reason)
        raise IllegalTransition(f"transfer {t.id}: {old.value} → {new.value} is not allowed")
    t.state = new
    t.history.append((now, old.value, new.value, reason))
    return {"transfer_id": t.id, "call_id": t.call_id, "old": old.value, "new": new.value, "reason": reason,
            "to_hotline": t.to_hotline, "mode": t.mode}  # fmt: skip


# --- the AMI side -----------------------------------------------------------------------------------


def handover_vars(t: Transfer) -> list[tuple[str, str]]:
    """``CB_*`` hand-over variables; the ``__`` prefix makes Asterisk inherit them to the new leg."""
    pairs = [
        ("CB_XFER_ID", t.id),
        ("CB_FROM_HOTLINE", t.from_hotline),
        ("CB_AGENT", t.agent),
        ("CB_CATEGORY", t.category),
        ("CB_TICKET", t.ticket),
        ("CB_CALLER_NUM", t.caller_num if t.rule.carry_number else ""),
        # empty CB_BACK: the rendered cb-back skips the agent and queues at the origin hotline
        ("CB_BACK", (t.agent_interface or t.agent) if "back_to_agent" in t.rule.failure else ""),
        ("CB_SUMMARY", t.summary),
        ("CB_TIMEOUT", str(t.rule.answer_timeout)),
        ("CB_CARRY", "1" if t.rule.carry_number else "0"),
        ("CB_BACKUP", "1" if "backup_line" in t.rule.failure else "0"),
    ]
    if t.priority is not None:
        pairs.append(("CB_PRIO", str(t.priority)))
    return [("__" + k, v) for k, v in pairs]


def setvars(channel: str, t: Transfer) -> list[Action]:
    return [Setvar(channel=channel, variable=k, value=v) for k, v in handover_vars(t)]


def blind_actions(t: Transfer) -> tuple[Action, ...]:
    """Hand-over variables on the caller's channel, then Redirect the caller into the rendered context."""
    return (*setvars(t.caller_channel, t), Redirect(channel=t.caller_channel, context=t.context, exten=ENTRY_EXTEN))


def attended_actions(t: Transfer) -> tuple[Action, ...]:
    """The consultation leg is created from the agent's side, so both channels carry the hand-over."""
    return (*setvars(t.caller_channel, t), *setvars(t.agent_channel, t),
            Atxfer(channel=t.agent_channel, context=t.context, exten=atxfer_exten(t)))  # fmt: skip


def complete_attended(t: Transfer) -> tuple[Action, ...]:
    """Asterisk completes an attended transfer when the transferer hangs up (never the caller)."""
    return (Hangup(channel=t.agent_channel),)


def cancel_attended(t: Transfer) -> tuple[Action, ...]:
    return (CancelAtxfer(channel=t.agent_channel),)


def check_actions(actions: tuple[Action, ...]) -> None:
    """Refuse an unsafe value (:class:`UnsafeValueError`) before anything of the batch is written.

    Each action is rendered as the writer renders it, except ``Setvar``: a transfer starts with eleven
    of them and rendering them all was half of a one-key decision, so their three header values are
    checked directly with the writer's own :func:`check_header` (the same check, without the generic
    rendering; tests compare both). The writer checks every header again when it sends.
    """
    for a in actions:
        if type(a) is Setvar:
            if a.channel is not None:
                check_header("Channel", a.channel)
            check_header("Variable", a.variable)
            check_header("Value", a.value)
        else:
            a.to_headers()


FAILURE_REASONS = {
    "BUSY": "busy",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "unreachable",
    "NOANSWER": "noanswer",
    "CANCEL": "cancelled",
}


def dial_failure_reason(dial_status: str) -> str:
    return FAILURE_REASONS.get(dial_status.upper(), dial_status.lower() or "failed")


#: QUEUESTATUS of a failed queue attempt (local destinations, expert seats) → failure reason.
QUEUE_FAILURES = {
    "TIMEOUT": "noanswer",
    "FULL": "busy",
    "JOINEMPTY": "unreachable",
    "LEAVEEMPTY": "unreachable",
    "JOINUNAVAIL": "unreachable",
    "LEAVEUNAVAIL": "unreachable",
}


def snapshot_of(ch: Channel) -> ChannelSnapshot:
    """A tracker channel as an AMI snapshot (after a resync the engine reads the tracker, not events)."""
    return ChannelSnapshot(ch.name, "6", ch.state_desc, ch.caller_num, ch.caller_name, ch.connected_num,
                           ch.connected_name, ch.context, ch.exten, "1", ch.uniqueid, ch.linkedid)


def cause_status(cause: int | None) -> str:
    """Q.850 cause of a failed leg → the DIALSTATUS Asterisk would report."""
    statuses = {17: "BUSY", 19: "NOANSWER", 18: "NOANSWER", 34: "CONGESTION", 21: "CHANUNAVAIL"}
    return statuses.get(cause or 0, "CHANUNAVAIL")
